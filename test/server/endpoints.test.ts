// The non-generation endpoints (/v1/models, /health, /metrics, /version, /tokenize, /detokenize) and the raw
// SSE bytes of a stream, read with plain fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyChatTemplate } from '../../models/common/chat_template.js';
import { MODEL_NAME, modelDir, startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
let root: string;
beforeAll(async () => {
  server = await startTestServer();
  root = server.baseURL.replace(/\/v1$/, '');
});
afterAll(async () => server.close());

const post = (path: string, body: unknown) =>
  fetch(root + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('endpoints', () => {
  it('/v1/models lists the served names with root and max_model_len', async () => {
    const list = await server.client().models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual([MODEL_NAME, 'alias-model']);
    const first = list.data[0] as (typeof list.data)[number] & { root: string; max_model_len: number };
    expect(first.root).toBe(modelDir);
    expect(first.max_model_len).toBe(512);
  });

  it('/health is 200 when ready, /version gives the package version', async () => {
    expect((await fetch(root + '/health')).status).toBe(200);
    const version = (await (await fetch(root + '/version')).json()) as { version: string };
    expect(version.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('/tokenize (prompt and chat messages) and /detokenize round-trip', async () => {
    const tok = server.model().tokenizer;
    const text = 'Hello tokenizer!';
    const a = (await (await post('/tokenize', { prompt: text, return_token_strs: true })).json()) as {
      count: number;
      tokens: number[];
      max_model_len: number;
      token_strs: string[];
    };
    expect(a.tokens).toEqual(tok.encode(text));
    expect(a.count).toBe(a.tokens.length);
    expect(a.max_model_len).toBe(512);
    expect(a.token_strs).toHaveLength(a.count);
    const messages = [{ role: 'user', content: 'hi there' }];
    const b = (await (await post('/tokenize', { model: MODEL_NAME, messages })).json()) as { tokens: number[] };
    const model = server.model();
    expect(b.tokens).toEqual(applyChatTemplate(model.tokenizer, model.chatTemplate, messages).promptIds);
    const c = (await (await post('/detokenize', { tokens: a.tokens })).json()) as { prompt: string };
    expect(c.prompt).toBe(text);
    const bad = await post('/detokenize', { tokens: [999999] });
    expect(bad.status).toBe(400);
  });

  it('/metrics exposes vLLM metric names with model_name after traffic', async () => {
    const client = server.client();
    await client.completions.create({
      model: MODEL_NAME,
      prompt: 'metrics',
      max_tokens: 5,
      temperature: 0,
      ...{ ignore_eos: true },
    });
    await client.chat.completions.create({
      model: MODEL_NAME,
      messages: [{ role: 'user', content: 'm' }],
      max_tokens: 3,
      ...{ ignore_eos: true },
    });
    const res = await fetch(root + '/metrics');
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`model_name="${MODEL_NAME}"`));
      return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value('vllm:generation_tokens_total')).toBeGreaterThanOrEqual(8);
    expect(value('vllm:prompt_tokens_total')).toBeGreaterThan(0);
    expect(value('vllm:num_requests_running')).toBe(0);
    expect(value('vllm:num_requests_waiting')).toBe(0);
    expect(value('vllm:kv_cache_usage_perc')).toBe(0);
    expect(value('vllm:e2e_request_latency_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(value('vllm:time_to_first_token_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(value('vllm:request_generation_tokens_sum')).toBeGreaterThanOrEqual(8);
    // Scoring a prompt (echo, max_tokens 0) adds no generation tokens to the per-request histogram.
    const before = value('vllm:request_generation_tokens_sum');
    await client.completions.create({ model: MODEL_NAME, prompt: 'score me', echo: true, logprobs: 1, max_tokens: 0 });
    const after = await (await fetch(root + '/metrics')).text();
    const sum = after.split('\n').find((l) => l.startsWith('vllm:request_generation_tokens_sum{'))!;
    expect(Number(sum.slice(sum.lastIndexOf(' ') + 1))).toBe(before);
    expect(text).toMatch(/vllm:request_success_total\{model_name="tiny-qwen3-vl-moe",finished_reason="length"\} [1-9]/);
    expect(text).toContain('# TYPE vllm:inter_token_latency_seconds histogram');
    expect(text).toContain('vllm:prefix_cache_queries_total');
  });

  it('streams raw SSE bytes: data lines, blank-line separated, ending with data: [DONE]', async () => {
    const res = await post('/v1/completions', {
      model: MODEL_NAME,
      prompt: 'raw bytes',
      max_tokens: 4,
      temperature: 0,
      ignore_eos: true,
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const raw = await res.text();
    expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = raw.split('\n\n').filter((e) => e !== '');
    expect(events.every((e) => e.startsWith('data: ') && !e.includes('\n'))).toBe(true);
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)) as { object: string; choices: { text: string }[] });
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.length).toBeGreaterThanOrEqual(1);
    const whole = await server.client().completions.create({
      model: MODEL_NAME,
      prompt: 'raw bytes',
      max_tokens: 4,
      temperature: 0,
      ...{ ignore_eos: true },
    });
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(whole.choices[0].text);
  });
});

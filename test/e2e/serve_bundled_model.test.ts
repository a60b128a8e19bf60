// The whole product on lavapipe: `dawnllm serve` with no MODEL loads the bundled NVFP4 arithmetic model on the GPU
// runner, and the official `openai` client gets transformers' answers back over HTTP (plain, streamed, with
// logprobs, several at once).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readUntil } from '../helpers/child_output.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuOrSkip } from '../helpers/gpu.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const png = readFileSync(join(repoRoot, 'test/fixtures/qwen3vlmoe-tiny/image/gradient-100x75.png'));
const gpu = await gpuOrSkip();
const model = 'qwen3vlmoe-arith-nvfp4';

describe.skipIf(gpu === null)('dawnllm serve, bundled model, real GPU runner', () => {
  let child: ChildProcess;
  let client: OpenAI;
  let base: string;

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      ['--import', 'tsx', join('test', 'e2e', 'serve_child_bundled.ts'), '--host', '127.0.0.1', '--port', '0'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } },
    );
    const out = await readUntil(child, /ready: .*/, 90_000);
    expect(out).toContain('ModelOpt NVFP4');
    const address = /listening on (http:\/\/[\d.:]+)/.exec(out)![1];
    base = address;
    client = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'x', maxRetries: 0 });
  }, 120_000);

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  const ask = (q: string) => ({ model, messages: [{ role: 'user' as const, content: q }], temperature: 0 });

  it('answers "What is 7 times 8?" with "56"', async () => {
    const r = await client.chat.completions.create({ ...ask('What is 7 times 8?'), max_tokens: 16 });
    expect(r.choices[0].message.content).toBe('56');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage?.completion_tokens).toBe(3); // "5", "6", <|im_end|>
  }, 60_000);

  it('streams the same answer token by token, with logprobs', async () => {
    const stream = await client.chat.completions.create({
      ...ask('What is 48 plus 27?'),
      max_tokens: 16,
      stream: true,
      logprobs: true,
      top_logprobs: 2,
    });
    let text = '';
    const logprobs: number[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      for (const l of chunk.choices[0]?.logprobs?.content ?? []) {
        expect(l.top_logprobs).toHaveLength(2);
        expect(l.top_logprobs[0].logprob).toBeGreaterThanOrEqual(l.top_logprobs[1].logprob);
        logprobs.push(l.logprob);
      }
    }
    expect(text).toBe('75');
    expect(logprobs.length).toBeGreaterThanOrEqual(2);
    for (const l of logprobs) expect(l).toBeLessThanOrEqual(0);
  }, 60_000);

  it('answers concurrent requests each correctly (continuous batching)', async () => {
    const cases: [string, string][] = [
      // Held-out items of assets/tasks/arith-gen.jsonl, one per task (transformers answers each exactly).
      ['What is 17 plus 88?', '105'],
      ['What is 58 minus 36?', '22'],
      ['What is 9 times 12?', '108'],
      ['What is 470 plus 241?', '711'],
    ];
    const answers = await Promise.all(
      cases.map(([q]) => client.chat.completions.create({ ...ask(q), max_tokens: 16 })),
    );
    expect(answers.map((a) => a.choices[0].message.content)).toEqual(cases.map(([, a]) => a));
  }, 60_000);

  it('completions: echo with prompt logprobs, a stop string, and n = 2 reproducible with a seed', async () => {
    const tok = (await (
      await fetch(`${base}/tokenize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'What is 25 plus 25?' }] }),
      })
    ).json()) as { tokens: number[] };
    const scored = await client.completions.create({
      model,
      prompt: tok.tokens,
      max_tokens: 8,
      temperature: 0,
      echo: true,
      logprobs: 1,
    });
    const lp = scored.choices[0].logprobs!;
    expect(lp.token_logprobs![0]).toBeNull(); // the first prompt token has no logprob
    expect(lp.tokens!.length).toBeGreaterThan(tok.tokens.length);
    expect(scored.choices[0].text.endsWith('50')).toBe(true);
    // "56" stopped at "6": the stop string is cut off and the reason reported.
    const stopped = await client.chat.completions.create({ ...ask('What is 7 times 8?'), max_tokens: 8, stop: ['6'] });
    expect(stopped.choices[0].message.content).toBe('5');
    expect(stopped.choices[0].finish_reason).toBe('stop');
    const sampled = () =>
      client.chat.completions.create({
        ...ask('What is 7 times 8?'),
        temperature: 1.5,
        n: 2,
        seed: 7,
        max_tokens: 6,
      });
    const [a, b] = [await sampled(), await sampled()];
    expect(a.choices).toHaveLength(2);
    expect(b.choices.map((c) => c.message.content)).toEqual(a.choices.map((c) => c.message.content));
  }, 60_000);

  it('takes an image as a data URL (the bundled model has the tiny vision tower)', async () => {
    const r = await client.chat.completions.create({
      model,
      temperature: 0,
      max_tokens: 4,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
            { type: 'text', text: 'What is 2 plus 2?' },
          ],
        },
      ],
    });
    expect(r.choices[0].finish_reason).toMatch(/stop|length/);
    // 6 image tokens (a 2×3 merged grid) between <|vision_start|> and <|vision_end|>, counted in the prompt.
    const text = await client.chat.completions.create({ ...ask('What is 2 plus 2?'), max_tokens: 1 });
    expect(r.usage!.prompt_tokens - text.usage!.prompt_tokens).toBe(8);
  }, 60_000);

  it('a client that disconnects mid-stream frees its sequence; /metrics counts the traffic', async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: 'What is', max_tokens: 2000, stream: true, ignore_eos: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.startsWith('data: {')).toBe(true); // raw SSE bytes
    controller.abort();
    const metric = async (name: string) => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      return line === undefined ? NaN : Number(line.split(' ').pop());
    };
    let running = NaN;
    for (let i = 0; i < 100 && running !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      running = await metric('vllm:num_requests_running');
    }
    expect(running).toBe(0);
    expect(await metric('vllm:kv_cache_usage_perc')).toBe(0);
    expect(await metric('vllm:prompt_tokens_total')).toBeGreaterThan(100);
    expect(await metric('vllm:generation_tokens_total')).toBeGreaterThan(10);
  }, 60_000);
});

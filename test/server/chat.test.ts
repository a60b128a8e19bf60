// Chat completions through the official openai client against the real server (fake runner, real tokenizer
// and chat template of the tiny fixture).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyChatTemplate } from '../../models/common/chat_template.js';
import { MODEL_NAME, startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hello.' },
];

describe('chat completions', () => {
  it('answers with the text of the generated tokens, usage and finish reason', async () => {
    const client = server.client();
    const res = await client.chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 12,
      temperature: 0,
      ...{ return_token_ids: true, ignore_eos: true },
    });
    const model = server.model();
    const { promptIds } = applyChatTemplate(model.tokenizer, model.chatTemplate, messages);
    const choice = res.choices[0] as (typeof res.choices)[number] & { token_ids: number[] };
    const body = res as typeof res & { prompt_token_ids: number[] };
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe(MODEL_NAME);
    expect(body.prompt_token_ids).toEqual(promptIds);
    expect(choice.token_ids).toHaveLength(12);
    // Greedy on the fake runner: each token is a hash of the context, computable here.
    const context = [...promptIds];
    for (const id of choice.token_ids) {
      expect(id).toBe(server.runner.expectedGreedy(context));
      context.push(id);
    }
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe(model.tokenizer.decode(choice.token_ids, { skipSpecialTokens: true }));
    expect(choice.finish_reason).toBe('length');
    expect(res.usage).toMatchObject({
      prompt_tokens: promptIds.length,
      completion_tokens: 12,
      total_tokens: promptIds.length + 12,
    });
  });

  it('streams the same text as the non-streamed answer, role chunk first, usage last', async () => {
    const client = server.client();
    const base = { model: MODEL_NAME, messages, max_tokens: 10, temperature: 0, ...{ ignore_eos: true } };
    const whole = await client.chat.completions.create(base);
    const stream = await client.chat.completions.create({
      ...base,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(whole.choices[0].message.content);
    const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null);
    expect(finishes).toEqual(['length']);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 10, prompt_tokens: whole.usage!.prompt_tokens });
    expect(chunks.slice(0, -1).every((c) => c.usage === undefined || c.usage === null)).toBe(true);
  });

  it('returns logprobs with top alternatives per token', async () => {
    const res = await server.client().chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      ...{ ignore_eos: true },
    });
    const content = res.choices[0].logprobs!.content!;
    expect(content).toHaveLength(5);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      expect(Buffer.from(entry.bytes!).toString('utf8')).toBe(entry.token);
    }
    expect(content.map((c) => c.token).join('')).toBe(res.choices[0].message.content);
  });

  it('n > 1 returns n distinct indexed choices; a seed makes sampling reproducible', async () => {
    const client = server.client();
    const req = {
      model: MODEL_NAME,
      messages,
      max_tokens: 8,
      temperature: 1,
      n: 3,
      seed: 1234,
      ...{ ignore_eos: true },
    };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    const c = await client.chat.completions.create({ ...req, seed: 99 });
    expect(a.choices.map((ch) => ch.index)).toEqual([0, 1, 2]);
    const texts = (r: typeof a) => r.choices.map((ch) => ch.message.content);
    expect(texts(b)).toEqual(texts(a));
    expect(new Set(texts(a)).size).toBe(3);
    expect(texts(c)).not.toEqual(texts(a));
    expect(a.usage!.completion_tokens).toBe(24);
  });

  it('stops at a stop string, leaving it out, and reports it as stop_reason', async () => {
    const client = server.client();
    const base = { model: MODEL_NAME, messages, max_tokens: 40, temperature: 0, ...{ ignore_eos: true } };
    const free = (await client.chat.completions.create(base)).choices[0].message.content!;
    // A stop string from the middle of the free-running answer.
    const stop = free.slice(12, 15);
    const cut = free.slice(0, free.indexOf(stop));
    const res = await client.chat.completions.create({ ...base, stop: [stop] });
    const choice = res.choices[0] as (typeof res.choices)[number] & { stop_reason: string | null };
    expect(choice.message.content).toBe(cut);
    expect(choice.finish_reason).toBe('stop');
    expect(choice.stop_reason).toBe(stop);
  });

  it('uses generation_config.json defaults unless the request sets a value', async () => {
    const client = server.client();
    server.runner.sampledParams.length = 0;
    await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 1 });
    const defaults = server.runner.sampledParams[0]!.params;
    expect(defaults).toMatchObject({ temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1 });
    server.runner.sampledParams.length = 0;
    await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 1, temperature: 0.2, top_p: 0.5 });
    expect(server.runner.sampledParams[0]!.params).toMatchObject({ temperature: 0.2, topP: 0.5, topK: 20 });
  });
});

describe('chat completions: stop tokens and held-back text', () => {
  const base = {
    model: MODEL_NAME,
    messages,
    max_tokens: 12,
    temperature: 0,
    ...{ ignore_eos: true, return_token_ids: true },
  };
  type Choice = { message: { content: string }; finish_reason: string; token_ids: number[]; stop_reason: unknown };

  it('stop_token_ids end the answer with stop_reason = the id, which is left out of the text', async () => {
    const client = server.client();
    const free = (await client.chat.completions.create(base)).choices[0] as unknown as Choice;
    const k = 5;
    const stopId = free.token_ids[k];
    const res = await client.chat.completions.create({ ...base, ...{ stop_token_ids: [stopId] } });
    const choice = res.choices[0] as unknown as Choice;
    const first = free.token_ids.indexOf(stopId);
    expect(choice.finish_reason).toBe('stop');
    expect(choice.stop_reason).toBe(stopId);
    expect(choice.token_ids).toEqual(free.token_ids.slice(0, first + 1));
    const tok = server.model().tokenizer;
    expect(choice.message.content).toBe(tok.decode(free.token_ids.slice(0, first), { skipSpecialTokens: true }));
  });

  it('text held back as a possible stop-string prefix is released when the answer ends at max_tokens', async () => {
    const client = server.client();
    const free = ((await client.chat.completions.create(base)).choices[0] as unknown as Choice).message.content;
    // The answer's last character starts a stop string that never completes: it is held back, then flushed.
    const stop = `${free.slice(-1)}\u0007never`;
    for (const stream of [false, true]) {
      let text = '';
      if (stream) {
        const s = await client.chat.completions.create({ ...base, stop, stream: true });
        for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? '';
      } else text = (await client.chat.completions.create({ ...base, stop })).choices[0].message.content!;
      expect(text).toBe(free);
    }
  });

  it('add_generation_prompt and chat_template_kwargs reach the template (seen through /tokenize)', async () => {
    const tokenize = async (extra: Record<string, unknown>) => {
      const res = await fetch(server.baseURL.replace(/\/v1$/, '/tokenize'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages, ...extra }),
      });
      return ((await res.json()) as { tokens: number[] }).tokens;
    };
    const withPrompt = await tokenize({ add_generation_prompt: true });
    const without = await tokenize({ add_generation_prompt: false });
    expect(withPrompt.length).toBeGreaterThan(without.length);
    expect(withPrompt.slice(0, without.length)).toEqual(without);
    const tok = server.model().tokenizer;
    expect(tok.decode(withPrompt.slice(without.length))).toContain('assistant');
  });
});

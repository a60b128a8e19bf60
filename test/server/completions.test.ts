// Legacy completions through the official openai client: prompts in every wire form, echo with prompt logprobs
// (lm-eval's multiple-choice request), streaming, n and stop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_NAME, startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

type Logprobs = {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
};

describe('completions', () => {
  it('generates from a text prompt: greedy tokens, text, usage; the default max_tokens is 16', async () => {
    const prompt = 'The capital of France is';
    const res = await server.client().completions.create({
      model: MODEL_NAME,
      prompt,
      temperature: 0,
      ...{ return_token_ids: true, ignore_eos: true },
    });
    const tok = server.model().tokenizer;
    const promptIds = tok.encode(prompt);
    const choice = res.choices[0] as (typeof res.choices)[number] & { token_ids: number[]; prompt_token_ids: number[] };
    expect(res.object).toBe('text_completion');
    expect(choice.prompt_token_ids).toEqual(promptIds);
    expect(choice.token_ids).toHaveLength(16);
    expect(choice.token_ids[0]).toBe(server.runner.expectedGreedy(promptIds));
    expect(choice.text).toBe(tok.decode(choice.token_ids, { skipSpecialTokens: true }));
    expect(choice.finish_reason).toBe('length');
    expect(res.usage).toMatchObject({ prompt_tokens: promptIds.length, completion_tokens: 16 });
  });

  it('accepts lists of strings, token ids and lists of token ids; choices are indexed prompt·n + k', async () => {
    const client = server.client();
    const tok = server.model().tokenizer;
    const ids = tok.encode('hello world');
    const a = await client.completions.create({
      model: MODEL_NAME,
      prompt: ['hello world', 'abc'],
      max_tokens: 3,
      temperature: 0,
    });
    const b = await client.completions.create({ model: MODEL_NAME, prompt: ids, max_tokens: 3, temperature: 0 });
    const c = await client.completions.create({ model: MODEL_NAME, prompt: [ids, ids], max_tokens: 3, temperature: 0 });
    expect(a.choices.map((ch) => ch.index)).toEqual([0, 1]);
    expect(b.choices[0].text).toBe(a.choices[0].text);
    expect(c.choices.map((ch) => ch.text)).toEqual([a.choices[0].text, a.choices[0].text]);
    const d = await client.completions.create({
      model: MODEL_NAME,
      prompt: ['x', 'y'],
      max_tokens: 3,
      n: 2,
      seed: 5,
      temperature: 1,
    });
    expect(d.choices.map((ch) => ch.index)).toEqual([0, 1, 2, 3]);
    expect(d.usage!.completion_tokens).toBeLessThanOrEqual(12);
  });

  it('echo + logprobs + max_tokens 0 scores the prompt only (lm-eval multiple choice)', async () => {
    const prompt = 'Question: 2+2? Answer: four';
    const res = await server
      .client()
      .completions.create({ model: MODEL_NAME, prompt, echo: true, logprobs: 1, max_tokens: 0 });
    const tok = server.model().tokenizer;
    const ids = tok.encode(prompt);
    const choice = res.choices[0];
    const lp = choice.logprobs as Logprobs;
    expect(choice.text).toBe(prompt);
    expect(lp.tokens).toHaveLength(ids.length);
    expect(lp.tokens.join('')).toBe(prompt);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.top_logprobs[0]).toBeNull();
    expect(lp.token_logprobs.slice(1).every((x) => typeof x === 'number' && x <= 0)).toBe(true);
    for (const [i, top] of lp.top_logprobs.slice(1).entries()) {
      expect(top![lp.tokens[i + 1]]).toBe(lp.token_logprobs[i + 1]);
      expect(Object.keys(top!).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top!).length).toBeLessThanOrEqual(2);
    }
    expect(lp.text_offset[0]).toBe(0);
    expect(lp.text_offset[ids.length - 1]).toBe(prompt.length - lp.tokens[ids.length - 1].length);
    expect(res.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: 0 });
  });

  it('echo + logprobs with generation returns prompt then output logprobs', async () => {
    const prompt = 'Once upon a time';
    const res = await server.client().completions.create({
      model: MODEL_NAME,
      prompt,
      echo: true,
      logprobs: 2,
      max_tokens: 4,
      temperature: 0,
      ...{ ignore_eos: true },
    });
    const n = server.model().tokenizer.encode(prompt).length;
    const lp = res.choices[0].logprobs as Logprobs;
    expect(res.choices[0].text.startsWith(prompt)).toBe(true);
    expect(lp.tokens).toHaveLength(n + 4);
    expect(lp.token_logprobs.filter((x) => x === null)).toHaveLength(1);
    expect(lp.text_offset[n]).toBe(prompt.length);
  });

  it('streams chunks whose text joins to the non-streamed text, then usage', async () => {
    const client = server.client();
    const base = {
      model: MODEL_NAME,
      prompt: 'Streaming test',
      max_tokens: 9,
      temperature: 0,
      ...{ ignore_eos: true },
    };
    const whole = await client.completions.create(base);
    const stream = await client.completions.create({ ...base, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    const finishes = [];
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        text += ch.text;
        if (ch.finish_reason) finishes.push(ch.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(finishes).toEqual(['length']);
    expect(usage).toMatchObject({ completion_tokens: 9 });
  });

  it('stop strings end the completion in streaming too', async () => {
    const client = server.client();
    const base = { model: MODEL_NAME, prompt: 'Stop test', max_tokens: 30, temperature: 0, ...{ ignore_eos: true } };
    const free = (await client.completions.create(base)).choices[0].text;
    const stop = free.slice(10, 12);
    const stream = await client.completions.create({ ...base, stop, stream: true });
    let text = '';
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(free.slice(0, free.indexOf(stop)));
    expect(finish).toBe('stop');
  });
});

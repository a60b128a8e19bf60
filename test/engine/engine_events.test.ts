// What a request's stream carries (tokens, text, finish reasons, usage, timings, logprobs, prompt logprobs), the
// metrics the server exports, and the engine's errors: runner failure, full queue, bad requests, shutdown.
import { describe, expect, it } from 'vitest';
import { ApiError, EngineError } from '../../core/errors.js';
import { QueueFullError } from '../../engine/engine.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { collect, expectedGreedy, makeEngine, makePrompt, run } from './helpers.js';

describe('LLMEngine events', () => {
  it('streams token ids and text, ends with length, and reports usage and timings', async () => {
    const { engine, runner } = makeEngine({ stepDelayMs: 2 });
    const prompt = makePrompt(20, 5);
    const out = await run(engine, prompt, { maxTokens: 6 });
    const deltas = out.events.filter((e) => e.type === 'delta');
    expect(deltas).toHaveLength(6);
    const want = expectedGreedy(runner, prompt, 6);
    expect(deltas.map((d) => d.tokenIds)).toEqual(want.map((t) => [t]));
    expect(out.text[0]).toBe(want.map((t) => `<${t}>`).join(''));
    expect(deltas.map((d) => d.finishReason)).toEqual([null, null, null, null, null, 'length']);
    expect(out.events.at(-1)).toBe(out.done);
    expect(out.done.usage).toEqual({ promptTokens: 20, completionTokens: 6, cachedPromptTokens: 0 });
    const t = out.done.timings;
    expect(t.queueMs).toBeGreaterThanOrEqual(0);
    expect(t.prefillMs).toBeGreaterThanOrEqual(1.5); // one 2 ms step
    expect(t.firstTokenMs).toBeCloseTo(t.queueMs + t.prefillMs, 6);
    expect(t.tokenTimesMs[0]).toHaveLength(6);
    expect(t.tokenTimesMs[0][0]).toBeCloseTo(t.firstTokenMs!, 6);
    for (let i = 1; i < 6; i++) expect(t.tokenTimesMs[0][i]).toBeGreaterThan(t.tokenTimesMs[0][i - 1]);
    expect(t.e2eMs).toBeGreaterThanOrEqual(t.tokenTimesMs[0][5]);
    expect(deltas.map((d) => d.timeMs)).toEqual(t.tokenTimesMs[0]);
  });

  it('returns logprobs per sampled token; the greedy pick ranks first', async () => {
    const { engine } = makeEngine();
    const out = await run(engine, makePrompt(10, 1), { maxTokens: 4, logprobs: 3 });
    for (const e of out.events) {
      if (e.type !== 'delta') continue;
      expect(e.logprobs).toHaveLength(1);
      const [lp] = e.logprobs!;
      expect(lp.tokenId).toBe(e.tokenIds[0]);
      expect(lp.rank).toBe(1);
      expect(lp.top).toHaveLength(3);
      expect(lp.top[0]).toEqual({ tokenId: lp.tokenId, logprob: lp.logprob });
    }
    const none = await run(engine, makePrompt(10, 1), { maxTokens: 2 });
    expect(none.events.every((e) => e.type === 'done' || e.logprobs === null)).toBe(true);
  });

  it('scores every prompt token for echo, the same across chunks and preemption, never from the cache', async () => {
    const prompt = makePrompt(100, 3);
    const params = { maxTokens: 20, promptLogprobs: 2 };
    const plain = await run(makeEngine().engine, prompt, params);
    const lps = plain.done.promptLogprobs!;
    expect(lps).toHaveLength(100);
    expect(lps[0]).toBeNull();
    expect(lps.slice(1).map((lp) => lp!.tokenId)).toEqual(prompt.slice(1));
    expect(lps[1]!.top).toHaveLength(2);
    // Chunks of 16, and a pool so small that the 3 requests preempt each other.
    const { engine } = makeEngine({ numKvBlocks: 20, blockSize: 8 }, { maxNumBatchedTokens: 16 });
    const outs = await Promise.all([0, 1, 2].map(() => run(engine, prompt, params)));
    expect(engine.metricsSnapshot().numPreemptions).toBeGreaterThan(0);
    for (const out of outs) {
      expect(out.done.promptLogprobs).toEqual(lps);
      expect(out.tokens).toEqual(plain.tokens);
      expect(out.done.usage.cachedPromptTokens).toBe(0);
    }
  });

  it('feeds the metrics: TTFT, ITL, E2E, queue time, token counters, step CPU time', async () => {
    const { engine } = makeEngine();
    const outs = await Promise.all([4, 7, 9].map((n, i) => run(engine, makePrompt(10 + i, i), { maxTokens: n })));
    const snap = engine.metricsSnapshot();
    expect(snap.timeToFirstTokenS.count).toBe(3);
    expect(snap.interTokenLatencyS.count).toBe(4 + 7 + 9 - 3);
    expect(snap.e2eRequestLatencyS.count).toBe(3);
    expect(snap.requestQueueTimeS.count).toBe(3);
    expect(snap.requestPrefillTimeS.count).toBe(3);
    expect(snap.requestDecodeTimeS.count).toBe(3);
    expect(snap.generationTokens).toBe(20);
    expect(snap.promptTokens).toBe(10 + 11 + 12);
    expect(snap.requestSuccess).toEqual({ stop: 0, length: 3, abort: 0 });
    expect(snap.stepCpuS.count).toBe(snap.numSteps);
    expect(snap.iterationTokens.count).toBe(snap.numSteps);
    expect(snap.iterationTokens.sum).toBe(33 + 20 - 3); // prompts, then one decode token per later output
    expect(snap.maxStepCpuS).toBeGreaterThan(0);
    // One idle gap before every step but the first of the busy period.
    expect(snap.runnerIdleS.count).toBe(snap.numSteps - 1);
    expect(outs.map((o) => o.tokens[0].length)).toEqual([4, 7, 9]);
    expect(engine.kvCacheSizeTokens).toBe(256 * 16);
  });

  it('fails the requests of a step the runner throws on, frees their blocks, and goes on serving', async () => {
    const { engine, runner } = makeEngine({ failAtStepId: 2 });
    const initial = engine.numFreeKvBlocks;
    const a = run(engine, makePrompt(10, 1), { maxTokens: 5 });
    await expect(a).rejects.toMatchObject({ code: 'DAWN_ERR_ENGINE_STEP' });
    await expect(a).rejects.toBeInstanceOf(EngineError);
    expect(engine.numFreeKvBlocks).toBe(initial);
    const b = await run(engine, makePrompt(10, 1), { maxTokens: 5 });
    expect(b.tokens[0]).toEqual(expectedGreedy(runner, makePrompt(10, 1), 5));
  });

  it('refuses a request with 429 when max_waiting requests are queued', async () => {
    const { engine } = makeEngine({ stepDelayMs: 5 }, { maxWaiting: 2 });
    const params = createSamplingParams({ temperature: 0, maxTokens: 3 });
    const add = (id: string) => engine.addRequest({ requestId: id, promptTokenIds: [1, 2, 3], params });
    const streams = [add('a'), add('b')];
    let error: unknown;
    try {
      add('c');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QueueFullError);
    expect(error).toMatchObject({ status: 429, retryAfterS: 1 });
    await Promise.all(streams.map(collect));
    expect(() => add('c')).not.toThrow();
  });

  it('rejects bad requests with 400s naming the field, and duplicate ids', async () => {
    const { engine } = makeEngine({ numKvBlocks: 4 }); // 64 tokens of KV
    const params = createSamplingParams({ maxTokens: 10 });
    const add = (prompt: number[], id = 'r') => engine.addRequest({ requestId: id, promptTokenIds: prompt, params });
    expect(() => add(makePrompt(60, 1))).toThrow(/maximum context length is 64 tokens/);
    expect(() => add([])).toThrow(ApiError);
    expect(() => add([1, 5000])).toThrow(/prompt token 1 is 5000/);
    const stream = add([1, 2]);
    expect(() => add([1, 2])).toThrow(/request id "r" is in use/);
    await collect(stream);
  });

  it('shuts down: in-flight requests abort after the grace period, then 503 and the runner is released', async () => {
    const { engine, runner } = makeEngine({ stepDelayMs: 2 });
    const slow = run(engine, makePrompt(10, 1), { maxTokens: 1000 });
    await engine.shutdown(20);
    const out = await slow;
    expect(out.finishReasons).toEqual(['abort']);
    expect(runner.isReleased).toBe(true);
    expect(() => run(engine, [1], {})).toThrow(expect.objectContaining({ status: 503 }));
  });
});

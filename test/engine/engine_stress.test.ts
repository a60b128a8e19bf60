// Many requests at once through a tiny KV pool: shared prefixes, n = 2 with seeds, greedy and sampled, staggered
// arrivals, clients that disconnect. Every request must produce exactly what it produces alone in a roomy engine
// (a disconnected one: a prefix of it), and every block must come back.
import { describe, expect, it } from 'vitest';
import type { SamplingParamsInput } from '../../engine/sampling_params.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { collect, makeEngine, makePrompt } from './helpers.js';

interface Case {
  id: string;
  prompt: number[];
  params: SamplingParamsInput;
  /** Disconnect after this many deltas; null: read to the end. */
  abortAfter: number | null;
  delayMs: number;
}

function makeCases(seed: number, count: number): Case[] {
  let x = seed;
  const rand = (n: number) => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
  const bases = [makePrompt(40, 1), makePrompt(17, 2), makePrompt(64, 3)];
  return Array.from({ length: count }, (_, i) => {
    const shared = rand(3) === 0 ? [] : bases[rand(3)];
    const prompt = [...shared, ...makePrompt(1 + rand(50), 100 + i)];
    const sampled = rand(2) === 0;
    const maxTokens = 1 + rand(40);
    const params: SamplingParamsInput = {
      maxTokens,
      ignoreEos: true,
      ...(sampled ? { temperature: 0.7, seed: rand(1000), n: 1 + rand(2) } : { temperature: 0 }),
      ...(rand(4) === 0 ? { stopTokenIds: [rand(1000)], minTokens: Math.min(maxTokens, rand(3)) } : {}),
    };
    return { id: `s${i}`, prompt, params, abortAfter: rand(6) === 0 ? rand(10) : null, delayMs: rand(4) };
  });
}

describe('LLMEngine under pressure', () => {
  it('gives every request its solo output through preemption, prefix sharing and disconnects', async () => {
    const cases = makeCases(12345, 48);
    const solo = makeEngine({ numKvBlocks: 64, blockSize: 8 }).engine;
    const want = new Map<string, number[][]>();
    for (const c of cases) {
      const params = createSamplingParams(c.params);
      const out = await collect(solo.addRequest({ requestId: c.id, promptTokenIds: c.prompt, params }));
      want.set(c.id, out.tokens);
    }

    const { engine, runner } = makeEngine(
      { numKvBlocks: 24, blockSize: 8 },
      { maxNumSeqs: 6, maxNumBatchedTokens: 48 },
    );
    const initial = engine.numFreeKvBlocks;
    const outs = await Promise.all(
      cases.map(async (c) => {
        await new Promise((resolve) => setTimeout(resolve, c.delayMs));
        const params = createSamplingParams(c.params);
        const stream = engine.addRequest({ requestId: c.id, promptTokenIds: c.prompt, params });
        const tokens: number[][] = [];
        let numDeltas = 0;
        for await (const event of stream) {
          if (event.type !== 'delta') continue;
          (tokens[event.index] ??= []).push(...event.tokenIds);
          if (c.abortAfter !== null && ++numDeltas > c.abortAfter) break;
        }
        return { c, tokens };
      }),
    );
    for (const { c, tokens } of outs) {
      const expected = want.get(c.id)!;
      if (c.abortAfter === null) expect(tokens, c.id).toEqual(expected);
      else
        for (const [i, seqTokens] of tokens.entries())
          if (seqTokens !== undefined) expect(seqTokens, c.id).toEqual(expected[i].slice(0, seqTokens.length));
    }
    const snap = engine.metricsSnapshot();
    expect(snap.numPreemptions).toBeGreaterThan(0);
    expect(snap.prefixCacheHitTokens).toBeGreaterThan(0);
    expect(snap.requestSuccess.abort).toBeGreaterThan(0);
    expect(engine.numFreeKvBlocks).toBe(initial);
    expect(engine.numUnfinishedRequests).toBe(0);
    expect(runner.steps.every((s) => s.entries.length <= 6)).toBe(true);
  }, 20_000);
});

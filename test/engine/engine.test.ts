// The engine loop on the fake runner: batching must not change what a request generates (alone, among others,
// preempted, served from the prefix cache), aborts free every block, and the loop leaves the event loop free.
import { describe, expect, it } from 'vitest';
import { collect, EOS, expectedGreedy, makeEngine, makePrompt, run } from './helpers.js';
import { createSamplingParams } from '../../engine/sampling_params.js';

/** Requests of different prompt and output lengths. */
const shapes = [
  [5, 12],
  [40, 3],
  [17, 20],
  [90, 9],
  [1, 15],
  [33, 1],
  [64, 7],
  [150, 18],
] as const;

describe('LLMEngine on the fake runner', () => {
  it('gives each greedy request the same tokens alone as among 8 concurrent ones (chunked prefill mixed in)', async () => {
    const alone: number[][] = [];
    for (const [i, [promptLen, maxTokens]] of shapes.entries()) {
      const { engine, runner } = makeEngine();
      const prompt = makePrompt(promptLen, i);
      const out = await run(engine, prompt, { maxTokens });
      expect(out.tokens[0]).toEqual(expectedGreedy(runner, prompt, maxTokens));
      expect(out.finishReasons).toEqual(['length']);
      alone.push(out.tokens[0]);
    }
    // A small token budget forces chunked prefills to share steps with decodes.
    const { engine, runner } = makeEngine({}, { maxNumBatchedTokens: 32 });
    const together = await Promise.all(
      shapes.map(([promptLen, maxTokens], i) => run(engine, makePrompt(promptLen, i), { maxTokens })),
    );
    expect(together.map((o) => o.tokens[0])).toEqual(alone);
    const mixed = runner.steps.filter(
      (s) => s.entries.some((e) => e.phase === 'decode') && s.entries.some((e) => e.phase === 'prefill'),
    );
    expect(mixed.length).toBeGreaterThan(0);
    expect(Math.max(...runner.steps.map((s) => s.entries.reduce((n, e) => n + e.numTokens, 0)))).toBeLessThanOrEqual(
      32,
    );
    expect(engine.numFreeKvBlocks).toBe(256);
  });

  it('gives a preempted request the same tokens as without preemption (greedy and seeded sampling)', async () => {
    const requests = [0, 1, 2, 3].map((i) => ({ prompt: makePrompt(30 + i * 3, 100 + i), seed: 7 + i }));
    const generate = async (numKvBlocks: number) => {
      const { engine } = makeEngine({ numKvBlocks, blockSize: 8 });
      const greedy = await Promise.all(requests.map((r) => run(engine, r.prompt, { maxTokens: 40 })));
      const sampled = await Promise.all(
        requests.map((r) => run(engine, r.prompt, { maxTokens: 40, temperature: 0.9, seed: r.seed })),
      );
      return { engine, tokens: [...greedy, ...sampled].map((o) => o.tokens[0]) };
    };
    const roomy = await generate(128);
    expect(roomy.engine.metricsSnapshot().numPreemptions).toBe(0);
    // Each request ends at ≤ 73 tokens = 10 blocks of 8; 4 at once need 40, the pool has 16.
    const tight = await generate(16);
    expect(tight.engine.metricsSnapshot().numPreemptions).toBeGreaterThan(0);
    expect(tight.tokens).toEqual(roomy.tokens);
    expect(tight.engine.numFreeKvBlocks).toBe(16);
  });

  it('counts prefix-cache hits, and a hit gives the same output as a miss', async () => {
    const shared = makePrompt(70, 1);
    const promptA = [...shared, ...makePrompt(10, 2)];
    const promptB = [...shared, ...makePrompt(25, 3)];
    const { engine, runner } = makeEngine();
    const a = await run(engine, promptA, { maxTokens: 6 });
    const b = await run(engine, promptB, { maxTokens: 6 });
    const snap = engine.metricsSnapshot();
    // B reuses the 4 full blocks of the shared 70 tokens (64 tokens); A found nothing.
    expect(b.done.usage.cachedPromptTokens).toBe(64);
    expect(a.done.usage.cachedPromptTokens).toBe(0);
    expect(snap.prefixCacheHitTokens).toBe(64);
    expect(snap.prefixCacheQueryTokens).toBe(promptA.length + promptB.length);
    expect(a.tokens[0]).toEqual(expectedGreedy(runner, promptA, 6));
    expect(b.tokens[0]).toEqual(expectedGreedy(runner, promptB, 6));
    // The same 80-token prompt again: 4 of its 5 full blocks come from the cache (the last token must be run
    // to get logits to sample from).
    const again = await run(engine, promptA, { maxTokens: 6 });
    expect(again.done.usage.cachedPromptTokens).toBe(64);
    expect(again.tokens).toEqual(a.tokens);

    const off = makeEngine({}, { enablePrefixCaching: false }).engine;
    await run(off, promptA, { maxTokens: 6 });
    const bOff = await run(off, promptB, { maxTokens: 6 });
    expect(bOff.tokens).toEqual(b.tokens);
    expect(off.metricsSnapshot().prefixCacheHitTokens).toBe(0);
  });

  it('reproduces n=2 with a seed; the two completions differ, another seed differs, siblings share the prompt', async () => {
    const prompt = makePrompt(40, 9);
    const go = async (seed: number) => {
      const { engine } = makeEngine();
      const out = await run(engine, prompt, { n: 2, temperature: 0.8, seed, maxTokens: 12 });
      return { out, snap: engine.metricsSnapshot() };
    };
    const first = await go(42);
    const second = await go(42);
    const other = await go(43);
    expect(first.out.tokens).toHaveLength(2);
    expect(second.out.tokens).toEqual(first.out.tokens);
    expect(first.out.tokens[0]).not.toEqual(first.out.tokens[1]);
    expect(other.out.tokens).not.toEqual(first.out.tokens);
    expect(first.out.finishReasons).toEqual(['length', 'length']);
    expect(first.out.done.usage).toMatchObject({ promptTokens: 40, completionTokens: 24 });
    // The second sibling waited for the first's prefill and reused its 2 full blocks.
    expect(first.snap.prefixCacheHitTokens).toBe(32);
    // Seed s drives sequence 0 and seed s + 1 sequence 1, as vLLM's per-sequence generators.
    const { engine } = makeEngine();
    const single = await run(engine, prompt, { temperature: 0.8, seed: 43, maxTokens: 12 });
    expect(single.tokens[0]).toEqual(first.out.tokens[1]);
  });

  it('frees every block on abort: engine.abort, a consumer that stops reading, and a queued request', async () => {
    const { engine } = makeEngine({ numKvBlocks: 64, stepDelayMs: 1 }, { maxNumSeqs: 2 });
    const initial = engine.numFreeKvBlocks;
    const params = createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: 200 });
    const add = (id: string) => engine.addRequest({ requestId: id, promptTokenIds: makePrompt(50, id.length), params });
    const a = add('a');
    const b = add('bb');
    const queued = add('ccc'); // max_num_seqs = 2: never scheduled before its abort
    const aDone = collect(a);
    let numRead = 0;
    for await (const event of b) {
      if (event.type === 'delta' && ++numRead === 5) break; // the client disconnects
    }
    expect(engine.numFreeKvBlocks).toBeLessThan(initial); // a still runs
    expect(engine.abort('a')).toBe(true);
    expect(engine.abort('ccc')).toBe(true);
    expect(engine.abort('a')).toBe(false);
    const outA = await aDone;
    const outQueued = await collect(queued);
    expect(outA.finishReasons).toEqual(['abort']);
    expect(outA.tokens[0].length).toBeGreaterThanOrEqual(5);
    expect(outQueued.finishReasons).toEqual(['abort']);
    expect(outQueued.tokens[0]).toEqual([]);
    expect(outQueued.done.timings.firstTokenMs).toBeNull();
    expect(engine.numFreeKvBlocks).toBe(initial);
    expect(engine.numUnfinishedRequests).toBe(0);
    expect(engine.metricsSnapshot()).toMatchObject({ numRunning: 0, numWaiting: 0, kvUsage: 0 });
  });

  it('serializes requests with max_num_seqs = 1', async () => {
    const { engine, runner } = makeEngine({}, { maxNumSeqs: 1 });
    const ends: string[] = [];
    const outs = await Promise.all(
      ['x', 'y', 'z'].map((id, i) =>
        collect(engine.addRequest({ requestId: id, promptTokenIds: makePrompt(10 + i, i), params: greedy(5) })).then(
          (out) => {
            ends.push(id);
            return out;
          },
        ),
      ),
    );
    expect(runner.steps.every((s) => s.entries.length === 1)).toBe(true);
    const order = runner.steps.map((s) => s.entries[0].seqId);
    // Each sequence's steps are contiguous: it ran to the end before the next one started.
    const runs = order.filter((id, i) => i === 0 || order[i - 1] !== id);
    expect(runs).toHaveLength(3);
    expect(ends).toEqual(['x', 'y', 'z']);
    expect(outs.map((o) => o.tokens[0].length)).toEqual([5, 5, 5]);
  });

  it('interleaves the chunked prefill of a long prompt with running decodes', async () => {
    const { engine, runner } = makeEngine({}, { maxNumBatchedTokens: 64 });
    const shortStream = engine.addRequest({ requestId: 'short', promptTokenIds: makePrompt(8, 1), params: greedy(60) });
    // Once the short request has its first token (it is decoding now), send a 700-token prompt.
    const events = shortStream[Symbol.asyncIterator]();
    const first = await events.next();
    const long = run(engine, makePrompt(700, 2), { maxTokens: 3 }, 'long');
    const shortTokens = first.value.type === 'delta' ? [...first.value.tokenIds] : [];
    for (let e = await events.next(); !e.done; e = await events.next())
      if (e.value.type === 'delta') shortTokens.push(...e.value.tokenIds);
    const outLong = await long;
    const longSeqId = runner.steps.flatMap((s) => s.entries).find((e) => e.numTokens > 8)!.seqId;
    const prefillSteps = runner.steps.filter((s) => s.entries.some((e) => e.seqId === longSeqId && !e.isSampled));
    // 700 tokens in chunks of ≤ 63 (one budget token goes to the decode): 12 steps, each with the decode.
    expect(prefillSteps.length).toBeGreaterThanOrEqual(11);
    for (const s of prefillSteps) expect(s.entries.map((e) => e.phase)).toEqual(['decode', 'prefill']);
    for (const s of runner.steps) expect(s.entries.reduce((n, e) => n + e.numTokens, 0)).toBeLessThanOrEqual(64);
    expect(shortTokens).toEqual(expectedGreedy(runner, makePrompt(8, 1), 60));
    expect(outLong.tokens[0]).toEqual(expectedGreedy(runner, makePrompt(700, 2), 3));
  });

  it('keeps the event loop free during a long run (a 2 ms interval keeps firing)', async () => {
    const { engine } = makeEngine({ numKvBlocks: 1024 });
    let last = performance.now();
    let maxGapMs = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      ticks++;
    }, 2);
    const started = performance.now();
    const outs = await Promise.all(
      Array.from({ length: 16 }, (_, i) => run(engine, makePrompt(200 + i, i), { maxTokens: 200 })),
    );
    clearInterval(timer);
    const elapsedMs = performance.now() - started;
    expect(outs.every((o) => o.tokens[0].length === 200)).toBe(true);
    const snap = engine.metricsSnapshot();
    expect(snap.numSteps).toBeGreaterThanOrEqual(200);
    // Generous bounds: the CI machine is shared. The point is that timers run between steps at all.
    expect(ticks).toBeGreaterThan(Math.min(20, elapsedMs / 20));
    expect(maxGapMs).toBeLessThan(250);
    console.log(
      `engine loop: ${snap.numSteps} steps, 16 × (200 in, 200 out) in ${elapsedMs.toFixed(0)} ms; ` +
        `engine CPU per step mean ${((snap.stepCpuS.sum / snap.stepCpuS.count) * 1000).toFixed(3)} ms, ` +
        `max ${(snap.maxStepCpuS * 1000).toFixed(3)} ms; longest timer gap ${maxGapMs.toFixed(1)} ms`,
    );
  });

  it('stops at EOS and at stop_token_ids once min_tokens exist, and ignore_eos runs to max_tokens', async () => {
    // The script makes every step answer EOS, or 5 after the prompt token 3.
    const script = (ctx: readonly number[]) => (ctx[ctx.length - 1] === 3 ? 5 : EOS);
    const { engine } = makeEngine({ script });
    const eos = await run(engine, [1, 2], { ignoreEos: false, maxTokens: 10 });
    expect(eos.tokens[0]).toEqual([EOS]);
    expect(eos.finishReasons).toEqual(['stop']);
    const ignoring = await run(engine, [1, 2], { ignoreEos: true, maxTokens: 4 });
    expect(ignoring.tokens[0]).toEqual([EOS, EOS, EOS, EOS]);
    expect(ignoring.finishReasons).toEqual(['length']);
    // EOS is suppressed (the fake sampler then takes the next id, 0) until 3 outputs exist.
    const min = await run(engine, [1, 2], { ignoreEos: false, minTokens: 3, maxTokens: 10 });
    expect(min.tokens[0]).toEqual([0, 0, 0, EOS]);
    const stopId = await run(engine, [3], { ignoreEos: false, stopTokenIds: [5], maxTokens: 10 });
    expect(stopId.tokens[0]).toEqual([5]);
    const last = stopId.events.findLast((e) => e.type === 'delta');
    expect(last).toMatchObject({ finishReason: 'stop', stopReason: 5 });
  });
});

function greedy(maxTokens: number) {
  return createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens });
}

describe('FakeModelRunner as a checker', () => {
  it('refuses a batch whose sequences write one KV slot, or read a slot never written', async () => {
    const { runner } = makeEngine({ numKvBlocks: 4, blockSize: 4 });
    const params = createSamplingParams({ temperature: 0 });
    const entry = (seqId: number, slot: number) => ({
      seqId,
      phase: 'prefill' as const,
      tokenIds: [1],
      positions: [0],
      slotMapping: [slot],
      blockTable: [Math.floor(slot / 4)],
      contextLen: 1,
      numCachedTokens: 0,
      promptLogprobs: null,
      mmInputs: [],
      sample: {
        params,
        seed: 0,
        outputIndex: 0,
        numLogprobs: null,
        suppressTokenIds: [],
        tokenIds: [1],
        numPromptTokens: 1,
      },
    });
    const batch = (entries: ReturnType<typeof entry>[]) => ({
      stepId: 0,
      entries,
      numTokens: entries.length,
      numPrefillTokens: entries.length,
      numDecodeTokens: 0,
    });
    await expect(runner.execute(batch([entry(0, 0), entry(1, 0)]))).rejects.toThrow(
      /seqs 0 and 1 both write KV slot 0/,
    );
    await expect(runner.execute(batch([{ ...entry(2, 4), slotMapping: [5] }]))).rejects.toThrow(
      /position 0 maps to slot 5, expected 4/,
    );
    const decode = { ...entry(3, 9), positions: [1], contextLen: 2 };
    await expect(runner.execute(batch([decode]))).rejects.toThrow(
      /position 1 maps to slot 9, expected 9|never written/,
    );
  });
});

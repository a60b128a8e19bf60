import { describe, expect, it } from 'vitest';
import { BlockManager } from '../../engine/block_manager.js';
import type { ScheduledBatch } from '../../engine/scheduled_batch.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { Scheduler } from '../../engine/scheduler.js';
import { Sequence } from '../../engine/sequence.js';
import { makeEngine, makePrompt, run } from './helpers.js';

let nextSeqId = 0;

function seqOf(promptLength: number, minTokens = 0, promptLogprobs: number | null = null): Sequence {
  const params = createSamplingParams({ temperature: 0, minTokens, stopTokenIds: [7], promptLogprobs });
  const prompt = makePrompt(promptLength, nextSeqId);
  return new Sequence({
    seqId: nextSeqId++,
    requestId: 'r',
    index: 0,
    promptTokenIds: prompt,
    params,
    seed: 0,
    maxTokens: 64,
  });
}

function setup(
  numBlocks: number,
  blockSize: number,
  maxNumSeqs: number,
  maxNumBatchedTokens: number,
  maxPromptLogprobTokens?: number,
) {
  const blocks = new BlockManager(numBlocks, blockSize);
  const scheduler = new Scheduler(blocks, {
    maxNumSeqs,
    maxNumBatchedTokens,
    eosTokenIds: [0],
    maxPromptLogprobTokens,
  });
  return { blocks, scheduler };
}

/** What the engine does after the runner returns: commit, then append a token where one was sampled. */
function complete(scheduler: Scheduler, batch: ScheduledBatch, seqs: Sequence[]): void {
  const byId = new Map(seqs.map((s) => [s.seqId, s]));
  scheduler.commit(batch, byId);
  for (const e of batch.entries) if (e.sample !== null) byId.get(e.seqId)!.appendToken(100 + e.sample.outputIndex);
}

const summary = (batch: ScheduledBatch) => batch.entries.map((e) => [e.seqId, e.phase, e.tokenIds.length]);

describe('Scheduler', () => {
  it('lays out a prefill: positions, slot mapping from the block table, context length, sampling', () => {
    const { scheduler } = setup(8, 16, 4, 512);
    const seq = seqOf(20);
    scheduler.add(seq);
    const batch = scheduler.schedule();
    expect(batch.entries).toHaveLength(1);
    const [e] = batch.entries;
    expect(e.phase).toBe('prefill');
    expect(e.positions).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(e.blockTable).toEqual(seq.blockTable);
    expect(e.slotMapping).toEqual(e.positions.map((p) => e.blockTable[Math.floor(p / 16)] * 16 + (p % 16)));
    expect(e.contextLen).toBe(20);
    expect(e.sample).toMatchObject({ outputIndex: 0, seed: 0, suppressTokenIds: [] });
    expect(batch).toMatchObject({ numTokens: 20, numPrefillTokens: 20, numDecodeTokens: 0 });
  });

  it('then decodes one token at a time, at the next position', () => {
    const { scheduler } = setup(8, 16, 4, 512);
    const seq = seqOf(16);
    scheduler.add(seq);
    complete(scheduler, scheduler.schedule(), [seq]);
    const batch = scheduler.schedule();
    expect(batch.entries[0]).toMatchObject({ phase: 'decode', tokenIds: [100], positions: [16], contextLen: 17 });
    expect(batch.entries[0].blockTable).toHaveLength(2); // position 16 opened a second block
  });

  it('splits a prompt longer than the token budget; only the last chunk samples', () => {
    const { scheduler } = setup(8, 16, 4, 8);
    const seq = seqOf(20);
    scheduler.add(seq);
    const chunks: [number[], boolean][] = [];
    for (let i = 0; i < 3; i++) {
      const batch = scheduler.schedule();
      const e = batch.entries[0];
      chunks.push([[e.positions[0], e.contextLen], e.sample !== null]);
      complete(scheduler, batch, [seq]);
    }
    expect(chunks).toEqual([
      [[0, 8], false],
      [[8, 16], false],
      [[16, 20], true],
    ]);
    expect(seq.numCompletionTokens).toBe(1);
  });

  it('puts decodes before prefill chunks within the budget', () => {
    const { scheduler } = setup(16, 16, 4, 4);
    const a = seqOf(3);
    scheduler.add(a);
    complete(scheduler, scheduler.schedule(), [a]);
    const b = seqOf(30);
    scheduler.add(b);
    const batch = scheduler.schedule();
    expect(summary(batch)).toEqual([
      [a.seqId, 'decode', 1],
      [b.seqId, 'prefill', 3],
    ]);
  });

  it('admits no more than max_num_seqs', () => {
    const { scheduler } = setup(16, 16, 1, 512);
    const seqs = [seqOf(5), seqOf(5), seqOf(5)];
    for (const s of seqs) scheduler.add(s);
    expect(summary(scheduler.schedule())).toEqual([[seqs[0].seqId, 'prefill', 5]]);
    expect(scheduler.waiting).toHaveLength(2);
  });

  it('preempts the newest running sequence when the KV pool is full, and recomputes it later', () => {
    const { scheduler, blocks } = setup(2, 4, 4, 512);
    const a = seqOf(4);
    const b = seqOf(4);
    scheduler.add(a);
    scheduler.add(b);
    const first = scheduler.schedule();
    expect(summary(first)).toEqual([
      [a.seqId, 'prefill', 4],
      [b.seqId, 'prefill', 4],
    ]);
    complete(scheduler, first, [a, b]);
    // Both need a second block for position 4; only a gets one, b (newest) goes back to the front of the queue.
    const second = scheduler.schedule();
    expect(summary(second)).toEqual([[a.seqId, 'decode', 1]]);
    expect(scheduler.numPreemptions).toBe(1);
    expect(b).toMatchObject({ status: 'waiting', numComputedTokens: 0, blockTable: [] });
    expect(scheduler.waiting[0]).toBe(b);
    expect(b.tokenIds).toHaveLength(5); // its output is kept and will be prefilled again
    scheduler.finish(a, 'stop');
    expect(blocks.numFreeBlocks).toBe(2);
    const third = scheduler.schedule();
    expect(third.entries[0]).toMatchObject({ seqId: b.seqId, phase: 'prefill', contextLen: 5 });
    expect(third.entries[0].sample).toMatchObject({ outputIndex: 1 });
  });

  it('suppresses EOS and stop ids until min_tokens outputs exist', () => {
    const { scheduler } = setup(8, 16, 4, 512);
    const seq = seqOf(4, 2);
    scheduler.add(seq);
    const batch = scheduler.schedule();
    expect(batch.entries[0].sample?.suppressTokenIds).toEqual([0, 7]);
    complete(scheduler, batch, [seq]);
    complete(scheduler, scheduler.schedule(), [seq]);
    expect(scheduler.schedule().entries[0].sample?.suppressTokenIds).toEqual([]);
  });

  it('finish frees every block at once, from either queue', () => {
    const { scheduler, blocks } = setup(8, 4, 4, 512);
    const a = seqOf(9);
    const b = seqOf(9);
    scheduler.add(a);
    scheduler.add(b);
    scheduler.schedule();
    expect(blocks.numFreeBlocks).toBe(2);
    scheduler.finish(a, 'abort');
    scheduler.finish(b, 'abort');
    expect(blocks.numFreeBlocks).toBe(8);
    expect(scheduler.hasWork).toBe(false);
  });
});

describe('Scheduler: prompt-logprob rows per step (maxPromptLogprobTokens)', () => {
  /** Scored tokens of a batch: prefill chunks that carry prompt logprobs (the runner reads all their logits back). */
  const scored = (batch: ScheduledBatch) =>
    batch.entries.reduce((n, e) => n + (e.phase === 'prefill' && e.promptLogprobs !== null ? e.tokenIds.length : 0), 0);

  it('shortens the chunks of prompt-logprob requests to the budget; plain requests take the token budget', () => {
    const { scheduler } = setup(64, 16, 8, 512, 10);
    const scoredSeq = seqOf(23, 0, 1);
    const plain = seqOf(40);
    scheduler.add(scoredSeq);
    scheduler.add(plain);
    const seqs = [scoredSeq, plain];
    const steps: (string | number)[][][] = [];
    while (!scoredSeq.isDecoding) {
      const batch = scheduler.schedule();
      expect(scored(batch)).toBeLessThanOrEqual(10);
      steps.push(summary(batch));
      complete(scheduler, batch, seqs);
    }
    expect(steps).toEqual([
      [
        [scoredSeq.seqId, 'prefill', 10],
        [plain.seqId, 'prefill', 40],
      ],
      [
        [plain.seqId, 'decode', 1],
        [scoredSeq.seqId, 'prefill', 10],
      ],
      [
        [plain.seqId, 'decode', 1],
        [scoredSeq.seqId, 'prefill', 3],
      ],
    ]);
    // The last chunk [20, 23) scores tokens 21 and 22 and samples.
    expect(scoredSeq.numCompletionTokens).toBe(1);
  });

  it('two prompt-logprob requests share one step’s budget, in order; a third waits while plain ones go', () => {
    const { scheduler } = setup(64, 16, 8, 512, 12);
    const a = seqOf(9, 0, 0);
    const b = seqOf(9, 0, 0);
    const c = seqOf(9, 0, 0);
    const plain = seqOf(9);
    for (const s of [a, b, c, plain]) scheduler.add(s);
    const first = scheduler.schedule();
    expect(summary(first)).toEqual([
      [a.seqId, 'prefill', 9],
      [b.seqId, 'prefill', 3],
      [plain.seqId, 'prefill', 9],
    ]);
    expect(c.status).toBe('waiting');
    complete(scheduler, first, [a, b, c, plain]);
    const second = scheduler.schedule();
    expect(summary(second)).toEqual([
      [a.seqId, 'decode', 1],
      [plain.seqId, 'decode', 1],
      [b.seqId, 'prefill', 6],
      [c.seqId, 'prefill', 6],
    ]);
    expect(scored(second)).toBe(12);
  });

  it('only chunks that score the prompt count: the last prompt token alone and decodes are free', () => {
    const { scheduler } = setup(64, 16, 4, 512, 4);
    const seq = seqOf(9, 0, 2);
    scheduler.add(seq);
    const lengths: number[] = [];
    for (let i = 0; i < 5; i++) {
      const batch = scheduler.schedule();
      lengths.push(batch.entries[0].tokenIds.length);
      complete(scheduler, batch, [seq]);
    }
    // [0,4) [4,8) score; [8,9) scores nothing (position 9 is not a prompt token) yet is a prefill under the cap.
    expect(lengths).toEqual([4, 4, 1, 1, 1]);
    expect(seq.numCompletionTokens).toBe(3);
  });

  it('rejects a budget below 1', () => {
    expect(() => setup(8, 16, 4, 512, 0)).toThrow(/maxPromptLogprobTokens must be an integer ≥ 1, got 0/);
  });

  it('engine on a runner with a small budget: same prompt logprobs and tokens as one chunk, never over it', async () => {
    const prompt = makePrompt(100, 5);
    const params = { maxTokens: 6, promptLogprobs: 3 };
    const whole = await run(makeEngine().engine, prompt, params);
    expect(whole.done.promptLogprobs).toHaveLength(100);
    // The fake runner throws on a step carrying more than 7 scored tokens (as the GPU model's logit rows would).
    const { engine, runner } = makeEngine({ maxPromptLogprobTokensPerStep: 7 });
    const [x, y, plain] = await Promise.all([
      run(engine, prompt, params),
      run(engine, prompt, params),
      run(engine, makePrompt(200, 6), { maxTokens: 6 }),
    ]);
    for (const out of [x, y]) {
      expect(out.done.promptLogprobs).toEqual(whole.done.promptLogprobs);
      expect(out.tokens).toEqual(whole.tokens);
    }
    const plainSolo = await run(makeEngine().engine, makePrompt(200, 6), { maxTokens: 6 });
    expect(plain.tokens).toEqual(plainSolo.tokens);
    // The plain 200-token prompt went in one chunk; the scored prompts took ≥ 2 × 99 / 7 steps of prefill.
    expect(runner.steps[0].entries.find((e) => e.numTokens === 200)).toBeDefined();
    const prefillSteps = runner.steps.filter((s) => s.entries.some((e) => e.phase === 'prefill' && e.numTokens < 100));
    expect(prefillSteps.length).toBeGreaterThanOrEqual(Math.ceil((2 * 99) / 7));
  });
});

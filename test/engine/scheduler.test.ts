import { describe, expect, it } from 'vitest';
import { BlockManager } from '../../engine/block_manager.js';
import type { ScheduledBatch } from '../../engine/scheduled_batch.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { Scheduler } from '../../engine/scheduler.js';
import { Sequence } from '../../engine/sequence.js';
import { makePrompt } from './helpers.js';

let nextSeqId = 0;

function seqOf(promptLength: number, minTokens = 0): Sequence {
  const params = createSamplingParams({ temperature: 0, minTokens, stopTokenIds: [7] });
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

function setup(numBlocks: number, blockSize: number, maxNumSeqs: number, maxNumBatchedTokens: number) {
  const blocks = new BlockManager(numBlocks, blockSize);
  const scheduler = new Scheduler(blocks, { maxNumSeqs, maxNumBatchedTokens, eosTokenIds: [0] });
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

import { describe, expect, it } from 'vitest';
import { EngineError } from '../../core/errors.js';
import { hashBlock, extendBlockHashes, multiModalKeys, type BlockHash } from '../../engine/block_hash.js';
import { BlockManager } from '../../engine/block_manager.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { Sequence } from '../../engine/sequence.js';

const BS = 4; // small blocks keep the arithmetic readable
let nextSeqId = 0;

function seqOf(tokens: number[], mm: Sequence['mmInputs'] = []): Sequence {
  const params = createSamplingParams({ temperature: 0 });
  return new Sequence({
    seqId: nextSeqId++,
    requestId: 'r',
    index: 0,
    promptTokenIds: tokens,
    params,
    seed: 0,
    maxTokens: 16,
    mmInputs: mm,
  });
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** Admits `seq` whole (cache hit + the rest), as the scheduler would, and marks everything computed. */
function admit(bm: BlockManager, seq: Sequence): void {
  const prefix = bm.findCachedPrefix(seq);
  bm.allocate(seq, prefix, seq.numTokens - prefix.numTokens);
  const prev = seq.numComputedTokens;
  seq.numComputedTokens = seq.numTokens;
  bm.commitComputed(seq, prev);
}

describe('block hashes', () => {
  it('chain: a block key depends on every block before it', () => {
    const a = hashBlock(null, [1, 2, 3, 4]);
    const b = hashBlock(null, [9, 2, 3, 4]);
    expect(hashBlock(a, [5, 6, 7, 8])).not.toBe(hashBlock(b, [5, 6, 7, 8]));
    expect(hashBlock(a, [5, 6, 7, 8])).toBe(hashBlock(hashBlock(null, [1, 2, 3, 4]), [5, 6, 7, 8]));
    expect(a).toMatch(/^[0-9a-f]{32}$/);
  });

  it('only full blocks are hashed, and each once', () => {
    const hashes: BlockHash[] = [];
    extendBlockHashes(hashes, range(7), [], BS);
    expect(hashes).toHaveLength(1);
    const first = hashes[0];
    extendBlockHashes(hashes, range(8), [], BS);
    expect(hashes).toHaveLength(2);
    expect(hashes[0]).toBe(first);
    expect(hashes[1]).toBe(hashBlock(first, [4, 5, 6, 7]));
  });

  it('images enter the key of every block their span touches', () => {
    const mm = [{ contentHash: 'img-a', tokenStart: 3, numTokens: 3 }];
    expect(multiModalKeys(mm, 0, 4)).toEqual(['img-a@3']);
    expect(multiModalKeys(mm, 4, 8)).toEqual(['img-a@3']);
    expect(multiModalKeys(mm, 8, 12)).toEqual([]);
    const withA: BlockHash[] = [];
    const withB: BlockHash[] = [];
    extendBlockHashes(withA, range(8), mm, BS);
    extendBlockHashes(withB, range(8), [{ ...mm[0], contentHash: 'img-b' }], BS);
    expect(withA[0]).not.toBe(withB[0]);
    expect(withA[1]).not.toBe(withB[1]);
  });
});

describe('BlockManager', () => {
  it('allocates whole blocks and frees them all', () => {
    const bm = new BlockManager(8, BS);
    const seq = seqOf(range(9));
    expect(bm.canAllocate(seq, bm.findCachedPrefix(seq), 9)).toBe(true);
    bm.allocate(seq, bm.findCachedPrefix(seq), 9);
    expect(seq.blockTable).toEqual([0, 1, 2]);
    expect(bm.numFreeBlocks).toBe(5);
    bm.free(seq);
    expect(bm.numFreeBlocks).toBe(8);
    expect(seq.blockTable).toEqual([]);
  });

  it('canAllocate is honest: true exactly when allocate succeeds', () => {
    const bm = new BlockManager(3, BS);
    const big = seqOf(range(13)); // 4 blocks
    expect(bm.canAllocate(big, bm.findCachedPrefix(big), 13)).toBe(false);
    expect(() => bm.allocate(big, bm.findCachedPrefix(big), 13)).toThrow(/needs 4 blocks, 3 free/);
    expect(bm.numFreeBlocks).toBe(3);
    const fits = seqOf(range(12));
    expect(bm.canAllocate(fits, bm.findCachedPrefix(fits), 12)).toBe(true);
    bm.allocate(fits, bm.findCachedPrefix(fits), 12);
    expect(bm.numFreeBlocks).toBe(0);
    expect(bm.canAppend(fits, 12)).toBe(true); // the 12 tokens being computed fit in the blocks it has
    fits.numComputedTokens = 12;
    expect(bm.canAppend(fits, 1)).toBe(false);
    expect(() => bm.appendSlots(fits, 1)).toThrow(EngineError);
  });

  it('counts a hit on a free cached block against the free pool', () => {
    const bm = new BlockManager(3, BS);
    const a = seqOf(range(9));
    admit(bm, a); // blocks 0, 1 hashed; 2 partial
    bm.free(a);
    const b = seqOf([...range(8), 50, 51, 52, 53, 54]); // hits 2 blocks, needs 2 more: 4 > 3
    const prefix = bm.findCachedPrefix(b);
    expect(prefix.numTokens).toBe(8);
    expect(bm.canAllocate(b, prefix, 5)).toBe(false);
    expect(bm.canAllocate(b, prefix, 4)).toBe(true);
  });

  it('shares identical prefixes with ref counts, and never the last token', () => {
    const bm = new BlockManager(16, BS);
    const a = seqOf(range(10));
    admit(bm, a);
    const b = seqOf([...range(8), 77, 78, 79]);
    const prefix = bm.findCachedPrefix(b);
    expect(prefix.blockIds).toEqual(a.blockTable.slice(0, 2));
    bm.allocate(b, prefix, b.numTokens - prefix.numTokens);
    expect(b.numCachedTokens).toBe(8);
    expect(b.numComputedTokens).toBe(8);
    expect(bm.inspect(a.blockTable[0]).refCount).toBe(2);
    expect(bm.inspect(a.blockTable[2]).refCount).toBe(1);
    // An exact repeat of an 8-token prompt hits only 1 block: the step that computes the last token samples.
    const c = seqOf(range(8));
    expect(bm.findCachedPrefix(c).numTokens).toBe(4);
    expect(bm.numHitTokens).toBe(8);
    expect(bm.numQueryTokens).toBe(21);
  });

  it('keeps freed hashed blocks reusable, and evicts the least recently freed first', () => {
    const bm = new BlockManager(4, BS);
    const a = seqOf(range(5, 100)); // block 0 full+hashed, block 1 partial
    const b = seqOf(range(5, 200));
    admit(bm, a);
    admit(bm, b);
    const [a0, b0] = [a.blockTable[0], b.blockTable[0]];
    bm.free(a);
    bm.free(b);
    expect(bm.numFreeBlocks).toBe(4);
    expect(bm.inspect(a0)).toMatchObject({ refCount: 0, isCachedFree: true });
    // Two fresh blocks come from the empty pool first (the partial blocks), keeping both cached blocks.
    const c = seqOf(range(8, 300));
    bm.allocate(c, bm.findCachedPrefix(c), 8);
    expect(c.blockTable).not.toContain(a0);
    expect(c.blockTable).not.toContain(b0);
    // The next block evicts a0 (freed before b0); b's prefix is still a hit.
    const d = seqOf(range(2, 400));
    bm.allocate(d, bm.findCachedPrefix(d), 2);
    expect(d.blockTable).toEqual([a0]);
    expect(bm.findCachedPrefix(seqOf(range(5, 100))).numTokens).toBe(0);
    expect(bm.findCachedPrefix(seqOf(range(5, 200))).numTokens).toBe(4);
  });

  it('a hit moves a block to the recent end of the eviction order', () => {
    const bm = new BlockManager(4, BS);
    const a = seqOf(range(5, 100));
    const b = seqOf(range(5, 200));
    admit(bm, a);
    admit(bm, b);
    bm.free(a);
    bm.free(b); // cached order: a0, b0; two empty blocks
    const again = seqOf(range(5, 100));
    admit(bm, again); // revives a0, takes an empty block
    bm.free(again); // cached order: b0, a0
    const x = seqOf(range(9, 500)); // both empty blocks, then one eviction
    bm.allocate(x, bm.findCachedPrefix(x), 9);
    expect(bm.findCachedPrefix(seqOf(range(5, 200))).numTokens).toBe(0);
    expect(bm.findCachedPrefix(seqOf(range(5, 100))).numTokens).toBe(4);
  });

  it('refuses a double free, naming the block', () => {
    const bm = new BlockManager(4, BS);
    const a = seqOf(range(6));
    bm.allocate(a, bm.findCachedPrefix(a), 6);
    const impostor = seqOf(range(6));
    impostor.blockTable = [...a.blockTable];
    bm.free(a);
    expect(() => bm.free(impostor)).toThrow(/released block 1, whose ref count is already 0/);
    bm.free(a); // the table was cleared: freeing again is a no-op
    expect(bm.numFreeBlocks).toBe(4);
  });

  it('registers a block only once it is computed, and one copy per content', () => {
    const bm = new BlockManager(8, BS);
    const a = seqOf(range(9));
    const b = seqOf(range(9));
    bm.allocate(a, bm.findCachedPrefix(a), 9);
    bm.allocate(b, bm.findCachedPrefix(b), 9); // same step: no hit, nothing is computed yet
    expect(b.numCachedTokens).toBe(0);
    for (const s of [a, b]) {
      s.numComputedTokens = 9;
      bm.commitComputed(s, 0);
    }
    expect(bm.inspect(a.blockTable[0]).hash).not.toBeNull();
    const b0 = b.blockTable[0];
    expect(bm.inspect(b0).hash).toBeNull();
    bm.free(b);
    expect(bm.inspect(b0)).toMatchObject({ refCount: 0, isCachedFree: false });
  });

  it('with prefix caching off, nothing is shared', () => {
    const bm = new BlockManager(8, BS, { enablePrefixCaching: false });
    admit(bm, seqOf(range(9)));
    expect(bm.findCachedPrefix(seqOf(range(9))).numTokens).toBe(0);
  });

  it('checks its sizes', () => {
    expect(() => new BlockManager(0, 16)).toThrow(/numBlocks must be an integer ≥ 1, got 0/);
  });
});

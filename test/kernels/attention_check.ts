// Shared setup for the paged attention tests: a host-built cache whose sequences own shuffled, non-contiguous
// blocks, every byte not written being NaN (0xff in bf16, fp8 and f32), so a kernel that reads a token outside a
// sequence's context or an unused block poisons its output.
import { createBufferFrom } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { KV_BLOCK_SIZE, type KvCache, type KvCacheShape, type KvDtype, kvCacheBytes } from '../../kernels/kv_cache.js';
import type { SeqRef } from '../../kernels/reference/attention.js';
import { kvCacheWriteRef } from '../../kernels/reference/kv_cache.js';
import { randomArray, seededRandom } from '../helpers/compare.js';

export interface PagedSetup {
  shape: KvCacheShape;
  kBytes: ArrayBuffer;
  vBytes: ArrayBuffer;
  cache: KvCache;
  /** u32 [numSeqs, maxBlocks], unused entries point past the cache. */
  blockTables: Uint32Array;
  maxBlocks: number;
  contextLens: number[];
  scales: { kScale?: number; vScale?: number };
  /** The f32 K/V each sequence was written from, (contextLen, Hkv, D), before the cache's rounding. */
  raw: Array<{ k: Float32Array; v: Float32Array }>;
}

export function kvScalesFor(dtype: KvDtype): { kScale?: number; vScale?: number } {
  return dtype === 'fp8e4m3' ? { kScale: 0.02, vScale: 0.015 } : {};
}

/** Sequences of `contextLens` tokens of random K/V (values ~±1 before scaling) in a shuffled paged cache. */
export function buildPagedCache(
  gpu: Gpu,
  dtype: KvDtype,
  numKvHeads: number,
  headDim: number,
  contextLens: number[],
  seed: number,
  maxBlocks = Math.max(1, ...contextLens.map((l) => Math.ceil(l / KV_BLOCK_SIZE))),
): PagedSetup {
  const need = contextLens.reduce((a, l) => a + Math.ceil(l / KV_BLOCK_SIZE), 0);
  const numBlocks = need + 3; // a few blocks nobody owns
  const shape: KvCacheShape = { numBlocks, numKvHeads, headDim, dtype };
  const rand = seededRandom(seed);
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const blockTables = new Uint32Array(contextLens.length * maxBlocks).fill(numBlocks + 1000);
  const kBytes = new Uint8Array(kvCacheBytes(shape)).fill(0xff).buffer;
  const vBytes = new Uint8Array(kvCacheBytes(shape)).fill(0xff).buffer;
  const scales = kvScalesFor(dtype);
  const rowElems = numKvHeads * headDim;
  let next = 0;
  const raw: PagedSetup['raw'] = [];
  contextLens.forEach((L, s) => {
    const nb = Math.ceil(L / KV_BLOCK_SIZE);
    for (let b = 0; b < nb; b++) blockTables[s * maxBlocks + b] = ids[next++];
    const slots = Uint32Array.from({ length: L }, (_, t) => blockTables[s * maxBlocks + (t >> 4)] * 16 + (t & 15));
    // Values ~±1: FP8 stores them as ±1/scale (±50..67), well inside E4M3's range.
    const k = randomArray(L * rowElems, seed * 31 + s, 1);
    const v = randomArray(L * rowElems, seed * 37 + s, 1);
    kvCacheWriteRef(shape, kBytes, vBytes, k, v, slots, L, scales);
    raw.push({ k, v });
  });
  const cache: KvCache = {
    shape,
    k: createBufferFrom(gpu, 'cache/k', new Uint8Array(kBytes)),
    v: createBufferFrom(gpu, 'cache/v', new Uint8Array(vBytes)),
  };
  return { shape, kBytes, vBytes, cache, blockTables, maxBlocks, contextLens, scales, raw };
}

/** SeqRefs for packed queries: sequence s has queryLens[s] rows, the last ones of its context. */
export function seqRefs(setup: PagedSetup, queryLens: number[]): SeqRef[] {
  let start = 0;
  return queryLens.map((ql, s) => {
    const r: SeqRef = {
      queryStart: start,
      queryLen: ql,
      contextLen: setup.contextLens[s],
      blockTable: setup.blockTables.subarray(s * setup.maxBlocks, (s + 1) * setup.maxBlocks),
    };
    start += ql;
    return r;
  });
}

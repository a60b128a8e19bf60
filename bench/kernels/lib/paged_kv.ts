// Shared by the attention benchmarks: a paged KV cache filled with random stored values (drawn as bf16 / e4m3 bit
// patterns of moderate exponent, so no host encoding pass is needed at full shapes), holding `copies` disjoint
// block sets of the same sequences (repetitions rotate over them so the cache cannot hold the K/V), and the f64
// reference for sampled query rows. Lives in lib/ so `make bench-kernels` does not run it.
import { createBufferFrom } from '../../../kernels/gpu/buffers.js';
import type { Gpu } from '../../../kernels/gpu/device.js';
import {
  KV_BLOCK_SIZE,
  type KvCache,
  type KvCacheShape,
  type KvDtype,
  kvBytesPerElement,
  kvCacheBytes,
} from '../../../kernels/kv_cache.js';
import { causalAttentionRef } from '../../../kernels/reference/attention.js';
import { gatherKvRef } from '../../../kernels/reference/kv_cache.js';

export interface BenchKv {
  shape: KvCacheShape;
  kBytes: ArrayBuffer;
  vBytes: ArrayBuffer;
  cache: KvCache;
  /** One u32 [numSeqs, maxBlocks] table per copy; copy r's blocks are disjoint from every other copy's. */
  blockTables: Uint32Array[];
  maxBlocks: number;
  contextLens: number[];
  scales: { kScale?: number; vScale?: number };
}

/** Bytes of K and V one pass over `tokens` cached tokens reads. */
export function kvReadBytes(dtype: KvDtype, numKvHeads: number, headDim: number, tokens: number): number {
  return 2 * tokens * numKvHeads * headDim * kvBytesPerElement[dtype];
}

/** Copies of the sequences' blocks to rotate over: ≥ minTotalBytes of K/V in all, within one binding. */
export function kvCopies(
  gpu: Gpu,
  dtype: KvDtype,
  numKvHeads: number,
  headDim: number,
  contextLens: number[],
  minTotalBytes: number,
): number {
  const blocks = contextLens.reduce((a, l) => a + Math.ceil(l / KV_BLOCK_SIZE), 0);
  const perCopy = kvCacheBytes({ numBlocks: blocks, numKvHeads, headDim, dtype });
  const fit = Math.floor(gpu.caps.maxStorageBufferBindingSize / perCopy);
  return Math.max(1, Math.min(fit, Math.ceil(minTotalBytes / (2 * perCopy))));
}

/** Random stored elements: bf16 magnitudes in [2^-7, 2), e4m3 in [2^-3, 2^4) (times the 0.05 scale). */
function randomStored(dtype: KvDtype, bytes: number, seed: number): ArrayBuffer {
  const buf = new ArrayBuffer(bytes);
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  if (dtype === 'bf16') {
    const u = new Uint16Array(buf);
    for (let i = 0; i < u.length; i++) {
      const r = next();
      u[i] = (r & 0x8000) | ((120 + ((r >>> 8) & 7)) << 7) | ((r >>> 16) & 0x7f);
    }
  } else if (dtype === 'fp8e4m3') {
    const u = new Uint8Array(buf);
    for (let i = 0; i < u.length; i++) {
      const r = next();
      u[i] = (r & 0x80) | ((4 + ((r >>> 8) & 7)) << 3) | ((r >>> 16) & 7);
    }
  } else {
    const f = new Float32Array(buf);
    for (let i = 0; i < f.length; i++) f[i] = (next() / 4294967296) * 2 - 1;
  }
  return buf;
}

export function buildBenchKv(
  gpu: Gpu,
  dtype: KvDtype,
  numKvHeads: number,
  headDim: number,
  contextLens: number[],
  copies: number,
  seed = 1,
): BenchKv {
  const maxBlocks = Math.max(1, ...contextLens.map((l) => Math.ceil(l / KV_BLOCK_SIZE)));
  const perCopy = contextLens.reduce((a, l) => a + Math.ceil(l / KV_BLOCK_SIZE), 0);
  const shape: KvCacheShape = { numBlocks: perCopy * copies, numKvHeads, headDim, dtype };
  const bytes = kvCacheBytes(shape);
  const kBytes = randomStored(dtype, bytes, seed);
  const vBytes = randomStored(dtype, bytes, seed + 1);
  const blockTables: Uint32Array[] = [];
  for (let r = 0; r < copies; r++) {
    const table = new Uint32Array(contextLens.length * maxBlocks);
    let next = r * perCopy;
    contextLens.forEach((l, s) => {
      for (let b = 0; b < Math.ceil(l / KV_BLOCK_SIZE); b++) table[s * maxBlocks + b] = next++;
    });
    blockTables.push(table);
  }
  const cache: KvCache = {
    shape,
    k: createBufferFrom(gpu, 'cache/k', new Uint8Array(kBytes)),
    v: createBufferFrom(gpu, 'cache/v', new Uint8Array(vBytes)),
  };
  const scales = dtype === 'fp8e4m3' ? { kScale: 0.05, vScale: 0.05 } : {};
  return { shape, kBytes, vBytes, cache, blockTables, maxBlocks, contextLens, scales };
}

/**
 * f64 attention of query rows of sequence `seq` (copy 0's blocks): `rows` are [q row (Hq·D f32), position] pairs,
 * position p attending keys 0..p. Returns (rows, Hq, D).
 */
export function attendRowsRef(
  kv: BenchKv,
  numQHeads: number,
  seq: number,
  rows: Array<{ q: ArrayLike<number>; pos: number }>,
): Float64Array {
  const { numKvHeads, headDim: D } = kv.shape;
  const table = kv.blockTables[0].subarray(seq * kv.maxBlocks, (seq + 1) * kv.maxBlocks);
  const { k, v } = gatherKvRef(kv.shape, kv.kBytes, kv.vBytes, table, kv.contextLens[seq], kv.scales);
  const out = new Float64Array(rows.length * numQHeads * D);
  rows.forEach((r, i) => {
    const o = causalAttentionRef({ numQHeads, numKvHeads, headDim: D }, r.q, 1, r.pos, k, v);
    out.set(o, i * numQHeads * D);
  });
  return out;
}

export function destroyBenchKv(kv: BenchKv): void {
  kv.cache.k.destroy();
  kv.cache.v.destroy();
}

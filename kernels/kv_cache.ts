// The paged KV cache: its layout and element types, the contract between kv_cache_write and the attention kernels
// (and the engine's block manager, which hands out block ids).
//
// Per layer there are two buffers, K and V, each [numBlocks, numKvHeads, 16 tokens, headDim] elements, cut into
// (block, kv head) tiles of 16·headDim contiguous elements. Inside a tile elements travel in units of 8:
//   K tile: [headDim/8 units][16 tokens] units  (unit-major, as vLLM's key cache: a thread per token reads
//           consecutive 16-byte units across a warp, and the QK loop needs no cross-thread reduction)
//   V tile: [16 tokens][headDim/8 units] units  (token-major: threads that own a slice of headDim read one
//           contiguous row per token)
// Element types (kv dtype):
//   bf16     2 bytes, round-to-nearest-even from f32 (default: what HF's bf16 model stores)
//   fp8e4m3  1 byte, stored = e4m3(x · (1/scale)) with per-tensor k_scale / v_scale, read = e4m3 · scale
//   f32      4 bytes (tests: makes the attention math checkable without any storage rounding)
// A token's place is its slot: block · 16 + offset. Sequences own blocks through a block table
// (u32 [numSeqs, maxBlocksPerSeq], row s lists sequence s's blocks in order); slot_mapping (u32 per new token)
// says where kv_cache_write puts each new token, SLOT_SKIP marks a padding token that is not written.
import { KernelError } from '../core/errors.js';
import { createBuffer } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { loadWgsl } from './gpu/wgsl_source.js';

export type KvDtype = 'bf16' | 'fp8e4m3' | 'f32';

export const KV_BLOCK_SIZE = 16;
export const KV_UNIT_ELEMS = 8;
/** slot_mapping value of a padding token: kv_cache_write skips it. */
export const SLOT_SKIP = 0xffffffff;

export const kvBytesPerElement: Record<KvDtype, number> = { bf16: 2, fp8e4m3: 1, f32: 4 };

export interface KvCacheShape {
  numBlocks: number;
  numKvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

/** One layer's cache: K and V buffers of `kvCacheBytes(shape)` each. */
export interface KvCache {
  shape: KvCacheShape;
  k: GPUBuffer;
  v: GPUBuffer;
}

/** Scales of an FP8 cache (1 for the others): stored = e4m3(x / scale), read = e4m3 · scale. */
export interface KvScales {
  kScale: number;
  vScale: number;
}

export function checkHeadDim(label: string, headDim: number): void {
  if (!(Number.isInteger(headDim) && headDim >= 32 && headDim <= 256 && (headDim & (headDim - 1)) === 0)) {
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: head_dim ${headDim} is not supported, expected a power of two in [32, 256]`,
    );
  }
}

/** Bytes of one of the two buffers (K or V). */
export function kvCacheBytes(shape: KvCacheShape): number {
  return shape.numBlocks * shape.numKvHeads * KV_BLOCK_SIZE * shape.headDim * kvBytesPerElement[shape.dtype];
}

/** Allocates one layer's K and V buffers (contents undefined until written). */
export function createKvCache(gpu: Gpu, label: string, shape: KvCacheShape): KvCache {
  checkHeadDim(label, shape.headDim);
  const bytes = kvCacheBytes(shape);
  if (bytes > gpu.caps.maxStorageBufferBindingSize) {
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: ${shape.numBlocks} blocks need ${bytes} bytes per K/V buffer, the device binds at most ${gpu.caps.maxStorageBufferBindingSize}`,
      { hint: 'use fewer blocks per layer buffer' },
    );
  }
  return { shape, k: createBuffer(gpu, `${label}/k`, bytes), v: createBuffer(gpu, `${label}/v`, bytes) };
}

/** Index (in units of 8 elements) of unit `unit` of token `offset` of (block, kvHead) in the K buffer. */
export function kUnitIndex(s: KvCacheShape, block: number, kvHead: number, offset: number, unit: number): number {
  return ((block * s.numKvHeads + kvHead) * (s.headDim / KV_UNIT_ELEMS) + unit) * KV_BLOCK_SIZE + offset;
}

/** Index (in units of 8 elements) of unit `unit` of token `offset` of (block, kvHead) in the V buffer. */
export function vUnitIndex(s: KvCacheShape, block: number, kvHead: number, offset: number, unit: number): number {
  return ((block * s.numKvHeads + kvHead) * KV_BLOCK_SIZE + offset) * (s.headDim / KV_UNIT_ELEMS) + unit;
}

export function checkKvScales(label: string, dtype: KvDtype, scales: Partial<KvScales> | undefined): KvScales {
  const kScale = scales?.kScale ?? 1;
  const vScale = scales?.vScale ?? 1;
  for (const [name, v] of [
    ['k_scale', kScale],
    ['v_scale', vScale],
  ] as const) {
    if (!(Number.isFinite(v) && v > 0))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${name} must be a finite number > 0, got ${v}`);
    if (dtype !== 'fp8e4m3' && v !== 1)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: ${name} ${v} given for a ${dtype} cache; scales belong to fp8e4m3 caches only`,
      );
  }
  return { kScale, vScale };
}

/**
 * WGSL lines that declare the cache element type for a kernel variant (after the enable lines): the word alias,
 * the unit constant and the kv_cache snippet flags.
 */
export function kvDeclarations(dtype: KvDtype, headDim: number): string {
  const word = dtype === 'fp8e4m3' ? 'vec2<u32>' : 'vec4<u32>';
  return [`alias kv_word_t = ${word};`, `const UNITS_PER_ROW: u32 = ${headDim / KV_UNIT_ELEMS}u;`].join('\n');
}

export function kvFlags(dtype: KvDtype): Record<string, boolean> {
  return { KV_F32: dtype === 'f32', KV_BF16: dtype === 'bf16', KV_FP8: dtype === 'fp8e4m3' };
}

/** The snippets a kernel including `kv_cache` needs (`dequant` for e4m3_to_f32). */
export function kvSnippets(): Record<string, string> {
  return {
    kv_cache: loadWgsl(new URL('./kv_cache.wgsl', import.meta.url)),
    dequant: loadWgsl(new URL('./dequant.wgsl', import.meta.url)),
  };
}

/** Composes `source` (which includes kv_cache) for `dtype` with extra flags. */
export function composeKvKernel(source: string, dtype: KvDtype, flags: Record<string, boolean>, name: string): string {
  return composeWgsl(source, { ...kvFlags(dtype), ...flags }, kvSnippets(), name);
}

/** Short dtype tag for variant names: `attention_decode_bf16kv_f32`. */
export function kvTag(dtype: KvDtype): string {
  return `${dtype}kv`;
}

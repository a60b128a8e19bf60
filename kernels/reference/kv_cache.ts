// CPU reference for the paged KV cache (kernels/kv_cache.ts layout): element encoding exactly as the GPU does it,
// kv_cache_write, and reading a sequence's keys/values back through its block table.
// A cache buffer on the host is an ArrayBuffer of kvCacheBytes(shape) bytes, viewed per dtype.
import { bf16BitsToF32, f32ToBf16Bits } from '../../core/float16.js';
import { KV_BLOCK_SIZE, type KvCacheShape, type KvDtype, kUnitIndex, SLOT_SKIP, vUnitIndex } from '../kv_cache.js';
import { e4m3ToF32, f32ToE4m3 } from './quant_formats.js';

/** The stored code of one element (bf16 bits, E4M3 byte, or the f32 value), as kv_cache_write computes it. */
export function encodeKvElement(dtype: KvDtype, x: number, invScale: number): number {
  switch (dtype) {
    case 'bf16':
      return f32ToBf16Bits(x);
    case 'fp8e4m3':
      return f32ToE4m3(Math.fround(Math.fround(x) * invScale)); // the GPU's f32 multiply, correctly rounded
    case 'f32':
      return Math.fround(x);
  }
}

export function decodeKvElement(dtype: KvDtype, code: number, scale: number): number {
  switch (dtype) {
    case 'bf16':
      return bf16BitsToF32(code);
    case 'fp8e4m3':
      return e4m3ToF32(code) * scale;
    case 'f32':
      return code;
  }
}

/** The value a cache round trip gives x (what attention sees), in f64. */
export function roundTripKv(dtype: KvDtype, x: number, scale: number): number {
  return decodeKvElement(dtype, encodeKvElement(dtype, x, Math.fround(1 / scale)), scale);
}

function view(dtype: KvDtype, buf: ArrayBuffer): Uint16Array | Uint8Array | Float32Array {
  if (dtype === 'bf16') return new Uint16Array(buf);
  if (dtype === 'fp8e4m3') return new Uint8Array(buf);
  return new Float32Array(buf);
}

/** Element index of (block, kvHead, offset, d) in the K or V buffer. */
export function kvElementIndex(
  which: 'k' | 'v',
  s: KvCacheShape,
  block: number,
  kvHead: number,
  offset: number,
  d: number,
): number {
  const unit =
    which === 'k' ? kUnitIndex(s, block, kvHead, offset, d >> 3) : vUnitIndex(s, block, kvHead, offset, d >> 3);
  return unit * 8 + (d & 7);
}

/**
 * kv_cache_write on the host: k, v (T, Hkv, D) rows `kStride` / `vStride` elements apart, into the cache buffers
 * `kBuf` / `vBuf` (mutated) at slotMapping, with FP8 scales (stored = e4m3(x · fround(1/scale))).
 */
export function kvCacheWriteRef(
  shape: KvCacheShape,
  kBuf: ArrayBuffer,
  vBuf: ArrayBuffer,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  slotMapping: ArrayLike<number>,
  numTokens: number,
  opts: { kScale?: number; vScale?: number; kStride?: number; vStride?: number } = {},
): void {
  const { numKvHeads: H, headDim: D, dtype } = shape;
  const kInv = Math.fround(1 / (opts.kScale ?? 1));
  const vInv = Math.fround(1 / (opts.vScale ?? 1));
  const kStride = opts.kStride ?? H * D;
  const vStride = opts.vStride ?? H * D;
  const kv = view(dtype, kBuf);
  const vv = view(dtype, vBuf);
  for (let t = 0; t < numTokens; t++) {
    const slot = slotMapping[t];
    if (slot === SLOT_SKIP) continue;
    const block = Math.floor(slot / KV_BLOCK_SIZE);
    const offset = slot % KV_BLOCK_SIZE;
    for (let h = 0; h < H; h++) {
      for (let d = 0; d < D; d++) {
        kv[kvElementIndex('k', shape, block, h, offset, d)] = encodeKvElement(dtype, k[t * kStride + h * D + d], kInv);
        vv[kvElementIndex('v', shape, block, h, offset, d)] = encodeKvElement(dtype, v[t * vStride + h * D + d], vInv);
      }
    }
  }
}

/**
 * A sequence's first `contextLen` keys and values read back through its block table, decoded and scaled:
 * k, v as (contextLen, Hkv, D) in f64.
 */
export function gatherKvRef(
  shape: KvCacheShape,
  kBuf: ArrayBuffer,
  vBuf: ArrayBuffer,
  blockTableRow: ArrayLike<number>,
  contextLen: number,
  scales: { kScale?: number; vScale?: number } = {},
): { k: Float64Array; v: Float64Array } {
  const { numKvHeads: H, headDim: D, dtype } = shape;
  const kv = view(dtype, kBuf);
  const vv = view(dtype, vBuf);
  const k = new Float64Array(contextLen * H * D);
  const v = new Float64Array(contextLen * H * D);
  for (let t = 0; t < contextLen; t++) {
    const block = blockTableRow[Math.floor(t / KV_BLOCK_SIZE)];
    const offset = t % KV_BLOCK_SIZE;
    for (let h = 0; h < H; h++) {
      for (let d = 0; d < D; d++) {
        const i = (t * H + h) * D + d;
        k[i] = decodeKvElement(dtype, kv[kvElementIndex('k', shape, block, h, offset, d)], scales.kScale ?? 1);
        v[i] = decodeKvElement(dtype, vv[kvElementIndex('v', shape, block, h, offset, d)], scales.vScale ?? 1);
      }
    }
  }
  return { k, v };
}

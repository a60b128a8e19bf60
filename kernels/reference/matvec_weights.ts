// Random weights in every layout of kernels/weight_format.ts, generated directly as packed bytes (fast enough for
// bench shapes such as lm_head: no quantization search), and their upload into a GpuWeight. Tests and benches only.
import { f32ToBf16Bits } from '../../core/float16.js';
import { createBufferFrom } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import type { GpuWeight, WeightFormat } from '../weight_format.js';
import type { HostWeight } from './matvec.js';

/** xorshift32: deterministic and fast. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

export interface RandomWeightOptions {
  seed?: number;
  numRowGroups?: number; // nvfp4
  scaleBlock?: [number, number]; // fp8 (default per-tensor)
  preScale?: boolean;
}

/**
 * A random [E, N, K] weight. NVFP4: every code, block-scale bytes with exponent 0..10 (subnormals included), global
 * scales near 1e-2 per (expert, row group). FP8: every non-NaN byte (up to ±448), block scales near 2e-3. BF16/F32:
 * values of magnitude 2^-7..2^-3.
 */
export function randomHostWeight(
  format: WeightFormat,
  E: number,
  N: number,
  K: number,
  o: RandomWeightOptions = {},
): HostWeight {
  const next = rng(o.seed ?? 1);
  const unit = () => next() / 4294967296;
  const w: HostWeight = { format, numExperts: E, N, K, data: new Uint8Array(0) };
  const count = E * N * K;
  const words = (bytes: number) => {
    const u = new Uint32Array(Math.ceil(bytes / 4));
    for (let i = 0; i < u.length; i++) u[i] = next();
    return new Uint8Array(u.buffer, 0, bytes);
  };
  switch (format) {
    case 'nvfp4': {
      const groups = o.numRowGroups ?? 1;
      w.data = words(count / 2);
      w.blockScales = new Uint8Array(count / 16);
      for (let i = 0; i < w.blockScales.length; i++) {
        const r = next();
        w.blockScales[i] = ((r % 11) << 3) | ((r >>> 8) & 7);
      }
      w.globalScales = Float32Array.from({ length: E * groups }, () => 0.005 + 0.01 * unit());
      w.numRowGroups = groups;
      break;
    }
    case 'fp8': {
      w.data = words(count);
      for (let i = 0; i < count; i++) if ((w.data[i] & 0x7f) === 0x7f) w.data[i] ^= 1; // no NaN
      const [bn, bk] = o.scaleBlock ?? [N, K];
      const cells = E * Math.ceil(N / bn) * Math.ceil(K / bk);
      w.scales = Float32Array.from({ length: cells }, () => 0.001 + 0.002 * unit());
      w.scaleBlock = [bn, bk];
      break;
    }
    case 'bf16': {
      const bits = new Uint16Array(count);
      for (let i = 0; i < count; i++) {
        const r = next();
        bits[i] = (r & 0x807f) | ((120 + ((r >>> 8) & 3)) << 7);
      }
      w.data = new Uint8Array(bits.buffer);
      break;
    }
    case 'f32': {
      const v = new Float32Array(count);
      for (let i = 0; i < count; i++) v[i] = (unit() * 2 - 1) * 0.125;
      w.data = new Uint8Array(v.buffer);
      break;
    }
  }
  if (o.preScale) w.preScale = Float32Array.from({ length: E * K }, () => 0.5 + 1.5 * unit());
  return w;
}

/** A bf16 HostWeight from f32 values [E, N, K] (rounded to nearest even, as PyTorch does). */
export function bf16HostWeight(values: ArrayLike<number>, E: number, N: number, K: number): HostWeight {
  const bits = new Uint16Array(E * N * K);
  for (let i = 0; i < bits.length; i++) bits[i] = f32ToBf16Bits(values[i]);
  return { format: 'bf16', numExperts: E, N, K, data: new Uint8Array(bits.buffer) };
}

/** Uploads a HostWeight; the GpuWeight's buffers are labelled `${label}.data`, `.blockScales`, ... */
export function uploadHostWeight(gpu: Gpu, h: HostWeight, label: string): GpuWeight {
  const g: GpuWeight = {
    label,
    format: h.format,
    numExperts: h.numExperts,
    N: h.N,
    K: h.K,
    data: createBufferFrom(gpu, `${label}.data`, h.data),
  };
  if (h.blockScales) g.blockScales = createBufferFrom(gpu, `${label}.blockScales`, h.blockScales);
  if (h.globalScales) g.globalScales = createBufferFrom(gpu, `${label}.globalScales`, h.globalScales);
  if (h.numRowGroups) g.numRowGroups = h.numRowGroups;
  if (h.scales) g.scales = createBufferFrom(gpu, `${label}.scales`, h.scales);
  if (h.scaleBlock) g.scaleBlock = h.scaleBlock;
  if (h.preScale) g.preScale = createBufferFrom(gpu, `${label}.preScale`, h.preScale);
  return g;
}

/** Destroys a GpuWeight's buffers. */
export function destroyWeight(g: GpuWeight): void {
  for (const b of [g.data, g.blockScales, g.globalScales, g.scales, g.preScale]) b?.destroy();
}

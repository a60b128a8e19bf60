// Shared by the matmul_gemm suites: per-element error bounds for a sum of K products, output buffers with a guard
// region, readback in either output type.
//
// Bounds (u = 2⁻²⁴, S = Σ_k |x·s·w| from the reference, K terms):
//   tiled f32:       |gpu − ref| ≤ (K + 8)·u·S          (f32 accumulation, worst case γ_K, plus the rounding of
//                                                        x·s, of the products, the column scale and routing weight)
//   subgroup matrix: |gpu − ref| ≤ (2⁻¹⁰ + (K + 8)·u)·S + K·2⁻²³
//                    (x·s and a non-exact weight rounded to f16: 2⁻¹¹ each; products exact in f32, f32 accumulation;
//                     the absolute term covers f16 subnormal weights, spacing 2⁻²⁴ times |x·s| ≤ 2)
//   f16 output adds 2⁻¹¹·|ref| + 2⁻²⁴.
import { fromF16Array } from '../../core/float16.js';
import { createBuffer, readBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { FloatType } from '../../kernels/wgsl_types.js';

export const SENTINEL = 0x7eadbeef;
export const GUARD_BYTES = 256;

export interface BoundOptions {
  K: number;
  f16Operands: boolean;
  f16Output: boolean;
}

export function checkGemm(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  absRef: ArrayLike<number>,
  o: BoundOptions,
  name: string,
): { ok: boolean; message: string } {
  const u = 2 ** -24;
  const rel = (o.f16Operands ? 2 ** -10 : 0) + (o.K + 8) * u;
  const atol = (o.f16Operands ? o.K * 2 ** -23 : 0) + (o.f16Output ? 2 ** -24 : 0);
  const bad: string[] = [];
  let numBad = 0;
  let maxRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ref[i])) continue; // rows the kernel must leave alone are checked separately
    const bound = rel * absRef[i] + atol + (o.f16Output ? 2 ** -11 * Math.abs(ref[i]) : 0);
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= bound)) {
      numBad++;
      if (bad.length < 5) bad.push(`  at ${i}: ref ${ref[i]} vs gpu ${got[i]} (bound ${bound.toExponential(2)})`);
    } else if (bound > 0) maxRatio = Math.max(maxRatio, d / bound);
  }
  return numBad
    ? { ok: false, message: `Mismatch of ${name}: ${numBad}/${ref.length} outside the bound\n${bad.join('\n')}` }
    : { ok: true, message: `${name}: max error ${(maxRatio * 100).toFixed(1)}% of the bound` };
}

/** An output buffer of `elements` values plus a guard region, all filled with SENTINEL. */
export function sentinelBuffer(gpu: Gpu, label: string, elements: number, type: FloatType): GPUBuffer {
  const bytes = Math.ceil((elements * (type === 'f16' ? 2 : 4)) / 4) * 4 + GUARD_BYTES;
  const buf = createBuffer(gpu, label, bytes);
  gpu.queue.writeBuffer(buf, 0, new Uint32Array(bytes / 4).fill(SENTINEL));
  return buf;
}

/** Reads `elements` values back plus whether the guard region and the rows listed as untouched kept SENTINEL. */
export async function readOutput(
  gpu: Gpu,
  buf: GPUBuffer,
  elements: number,
  type: FloatType,
  untouched: (i: number) => boolean = () => false,
) {
  const raw = await readBuffer(gpu, buf);
  const words = new Uint32Array(raw);
  const dataWords = Math.ceil((elements * (type === 'f16' ? 2 : 4)) / 4);
  const guardOk = words.subarray(dataWords).every((w) => w === SENTINEL);
  const values = type === 'f16' ? fromF16Array(new Uint16Array(raw, 0, elements)) : new Float32Array(raw, 0, elements);
  const bits = type === 'f16' ? new Uint16Array(raw, 0, elements) : new Uint32Array(raw, 0, elements);
  // f16 elements see the two halves of the sentinel word in turn (little-endian: low half first).
  const sentinelBits = (i: number) => (type === 'f16' ? (i % 2 ? SENTINEL >>> 16 : SENTINEL & 0xffff) : SENTINEL);
  let untouchedOk = true;
  for (let i = 0; i < elements; i++) if (untouched(i) && bits[i] !== sentinelBits(i)) untouchedOk = false;
  return { values, guardOk, untouchedOk };
}

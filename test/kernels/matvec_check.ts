// Runs one matvec configuration on the device and checks it against kernels/reference/matvec.ts (shared by the
// matvec*.test.ts files). Output buffers get a sentinel fill and a guard region after the last element; padding
// entries and stride gaps must keep the sentinel.
// Tolerance per output (stated in the test headers): |gpu − ref| ≤ (K + 16)·2^-24·Σ_k|x_k·w_k|  (f32 accumulation
// of K products plus a handful of scale multiplies, each ≤ 2^-24 relative) + 2^-23·|ref| (residual add, final
// rounding), and for f16 output + 2^-11·|ref| + 2^-25 (one f16 rounding, subnormal spacing). With the rmsNorm
// prologue (bound over the normed x) + (K/2·2^-24 + 2^-20)·Σ_k|x_k·w_k|: the f32 sum of K squares (≤ K·2^-24
// relative, halved by the square root), inverseSqrt (2 ulp), the norm-weight multiply per x and the final scale.
import { f32ToF16Bits, fromF16Array, toF16Array } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import type { Matvec } from '../../kernels/matvec.js';
import { type HostWeight, matvecRef } from '../../kernels/reference/matvec.js';
import type { GpuWeight } from '../../kernels/weight_format.js';
import { seededRandom } from '../helpers/compare.js';

const SENTINEL32 = 0x7eadbeef;
const SENTINEL16 = 0x7ead; // an f16 NaN: no kernel result equals it
const GUARD_BYTES = 64;

export interface MatvecCase {
  kernel: Matvec;
  host: HostWeight;
  weight: GpuWeight;
  M: number;
  x: Float32Array; // (numXRows, xStride); rounded to f16 here when the kernel reads f16
  xStride?: number;
  outStride?: number;
  grouped?: { tileExperts: Uint32Array; entryRows: Uint32Array; mTile: number };
  numXRows?: number;
  residual?: Float32Array; // (M, nOut): the residual input or the initial out for 'accumulate'
  maxBindingBytes?: number;
  /** rmsNorm variants: the norm weight (f32 [K]) and epsilon. */
  norm?: { weight: Float32Array; eps: number };
}

export interface MatvecCheck {
  ok: boolean;
  message: string;
  worst: number; // max |err| / tolerance
}

export function randomX(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * 2);
}

const roundF16 = (v: Float32Array) => fromF16Array(toF16Array(v));

export async function checkMatvec(gpu: Gpu, c: MatvecCase): Promise<MatvecCheck> {
  const v = c.kernel.variant;
  const K = c.host.K;
  const nOut = c.kernel.outColumns(c.weight);
  const xStride = c.xStride ?? K;
  const outStride = c.outStride ?? nOut;
  const x = v.act === 'f16' ? roundF16(c.x) : c.x;
  const xBuf = createBufferFrom(gpu, 'x', v.act === 'f16' ? toF16Array(x) : x);
  const outElems = (c.M - 1) * outStride + nOut;
  const outBytes = outElems * (v.out === 'f16' ? 2 : 4);
  const out = createBuffer(gpu, 'out', outBytes + GUARD_BYTES);
  const fill = new Uint32Array(Math.ceil((outBytes + GUARD_BYTES) / 4));
  fill.fill(v.out === 'f16' ? (SENTINEL16 << 16) | SENTINEL16 : SENTINEL32);
  const rawOut = new Uint8Array(fill.buffer);
  // residual values on the out grid (strided), rounded to the out type
  let residual: Float32Array | undefined;
  let residualBuf: GPUBuffer | undefined;
  if (c.residual) {
    residual = v.out === 'f16' ? roundF16(c.residual) : c.residual;
    const grid = v.out === 'f16' ? new Uint16Array(outElems) : new Float32Array(outElems);
    for (let p = 0; p < c.M; p++)
      for (let n = 0; n < nOut; n++) {
        const val = residual[p * nOut + n];
        grid[p * outStride + n] = v.out === 'f16' ? f32ToF16Bits(val) : val;
      }
    if (v.epilogue === 'accumulate') {
      // the initial out holds the residual; stride gaps and padding entries keep the sentinel
      const bytes = new Uint8Array(grid.buffer);
      const step = v.out === 'f16' ? 2 : 4;
      for (let p = 0; p < c.M; p++)
        if (!c.grouped || c.grouped.entryRows[p] !== 0xffffffff)
          rawOut.set(bytes.subarray(p * outStride * step, (p * outStride + nOut) * step), p * outStride * step);
    } else residualBuf = createBufferFrom(gpu, 'residual', grid);
  }
  gpu.queue.writeBuffer(out, 0, fill);
  const extra: { tileExperts?: GPUBuffer; entryRows?: GPUBuffer } = {};
  if (c.grouped) {
    extra.tileExperts = createBufferFrom(gpu, 'tileExperts', c.grouped.tileExperts);
    extra.entryRows = createBufferFrom(gpu, 'entryRows', c.grouped.entryRows);
  }
  const normBuf = c.norm ? createBufferFrom(gpu, 'norm_w', c.norm.weight) : undefined;
  const d = c.kernel.bind(
    { x: xBuf, weight: c.weight, out, residual: residualBuf, normWeight: normBuf, ...extra },
    { M: c.M, xStride, outStride, numXRows: c.numXRows, maxBindingBytes: c.maxBindingBytes, eps: c.norm?.eps },
  );
  await runDispatches(gpu, [d], c.kernel.name);
  const raw = await readBuffer(gpu, out);
  for (const b of [xBuf, out, residualBuf, normBuf, extra.tileExperts, extra.entryRows]) b?.destroy();

  const ref = matvecRef({
    weight: c.host,
    x,
    xStride,
    M: c.M,
    grouped: c.grouped,
    epilogue: v.epilogue,
    residual,
    norm: c.norm,
  });
  const got = v.out === 'f16' ? fromF16Array(new Uint16Array(raw, 0, outElems)) : new Float32Array(raw, 0, outElems);
  const bits = v.out === 'f16' ? new Uint16Array(raw, 0, outElems) : new Uint32Array(raw, 0, outElems);
  const sentinel = v.out === 'f16' ? SENTINEL16 : SENTINEL32;
  const bad: string[] = [];
  let numBad = 0;
  let worst = 0;
  for (let p = 0; p < c.M; p++) {
    for (let n = 0; n < outStride && p * outStride + n < outElems; n++) {
      const i = p * outStride + n;
      const r = n < nOut ? ref.y[p * nOut + n] : Number.NaN;
      if (Number.isNaN(r)) {
        // padding entry or stride gap: untouched
        if (bits[i] !== sentinel) {
          numBad++;
          if (bad.length < 5) bad.push(`  (${p}, ${n}): written, should be untouched`);
        }
        continue;
      }
      const b = ref.bound[p * nOut + n];
      let tol = (K + 16) * 2 ** -24 * b + 2 ** -23 * Math.abs(r) + 1e-30;
      if (v.out === 'f16') tol += 2 ** -11 * Math.abs(r) + 2 ** -25;
      if (c.norm) tol += ((K / 2) * 2 ** -24 + 2 ** -20) * b;
      const err = Math.abs(got[i] - r);
      worst = Math.max(worst, err / tol);
      if (!(err <= tol)) {
        numBad++;
        if (bad.length < 5) bad.push(`  (${p}, ${n}): ref ${r} vs gpu ${got[i]} (tolerance ${tol.toExponential(2)})`);
      }
    }
  }
  const guard = new Uint8Array(raw, outBytes);
  const guardOk = guard.every((byte, j) => byte === rawOut[outBytes + j]);
  const name = `${c.kernel.name} M=${c.M} N=${c.host.N} K=${K} E=${c.host.numExperts}`;
  if (!guardOk) bad.push('  write past the end of out (guard region changed)');
  const ok = numBad === 0 && guardOk;
  return {
    ok,
    worst,
    message: ok
      ? `${name}: worst error ${worst.toExponential(2)} of tolerance`
      : `Mismatch of ${name}: ${numBad} bad outputs\n${bad.join('\n')}`,
  };
}

/** Per token, `topk` distinct experts of E in shuffled order (llama.cpp test_mul_mat_id style). */
export function shuffledExperts(numTokens: number, topk: number, E: number, seed: number): number[] {
  const r = seededRandom(seed);
  const out: number[] = [];
  for (let t = 0; t < numTokens; t++) {
    const ids = Array.from({ length: E }, (_, i) => i);
    for (let i = E - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    out.push(...ids.slice(0, topk));
  }
  return out;
}

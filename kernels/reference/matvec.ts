// CPU reference for kernels/matvec.wgsl, in f64, computed from the same packed bytes the GPU reads (each weight row
// is dequantized with kernels/reference/quant_formats.ts first). Rows can be sampled for big shapes.
//   x (rows, xStride) · W [E, N, K] (HostWeight) · returns (entries, nOut) and, per output, the bound Σ_k |x_k·w_k|
//   that f32 accumulation error scales with (tests derive their tolerance from it). With `norm` (the rmsNorm
//   prologue) x rows are RMSNorm'ed first, in f64, and the bound is over the normed x.
import { bf16BitsToF32 } from '../../core/float16.js';
import type { MatvecEpilogue } from '../matvec.js';
import type { WeightFormat } from '../weight_format.js';
import { e2m1ToF32, e4m3ToF32 } from './quant_formats.js';

/** A weight on the host exactly as kernels/weight_format.ts lays it out in GPU memory (experts stacked). */
export interface HostWeight {
  format: WeightFormat;
  numExperts: number;
  N: number;
  K: number;
  data: Uint8Array; // nvfp4 [E, N, K/2] · fp8 [E, N, K] · bf16 [E, N, K]·2 · f32 [E, N, K]·4
  blockScales?: Uint8Array; // nvfp4 [E, N, K/16]
  globalScales?: Float32Array; // nvfp4 [E, numRowGroups]
  numRowGroups?: number;
  scales?: Float32Array; // fp8 [E, gn, gk]
  scaleBlock?: [number, number];
  preScale?: Float32Array; // [E, K]
}

const E4M3 = Float64Array.from({ length: 256 }, (_, b) => e4m3ToF32(b));
const E2M1 = Float64Array.from({ length: 16 }, (_, c) => e2m1ToF32(c));

/** Row n of expert e, dequantized (f64, exact: every format's values are exact in f64). */
export function dequantRow(w: HostWeight, e: number, n: number): Float64Array {
  const { N, K } = w;
  const out = new Float64Array(K);
  const row = e * N + n;
  switch (w.format) {
    case 'nvfp4': {
      const groups = w.numRowGroups ?? 1;
      const global = w.globalScales![e * groups + Math.floor(n / (N / groups))];
      for (let k = 0; k < K; k++) {
        const byte = w.data[(row * K + k) >> 1];
        const code = k % 2 === 0 ? byte & 0xf : byte >> 4;
        out[k] = E2M1[code] * E4M3[w.blockScales![row * (K / 16) + (k >> 4)]] * global;
      }
      break;
    }
    case 'fp8': {
      const [bn, bk] = w.scaleBlock ?? [N, K];
      const gn = Math.ceil(N / bn);
      const gk = Math.ceil(K / bk);
      for (let k = 0; k < K; k++)
        out[k] = E4M3[w.data[row * K + k]] * w.scales![(e * gn + Math.floor(n / bn)) * gk + Math.floor(k / bk)];
      break;
    }
    case 'bf16': {
      const bits = new Uint16Array(w.data.buffer, w.data.byteOffset + row * K * 2, K);
      for (let k = 0; k < K; k++) out[k] = bf16BitsToF32(bits[k]);
      break;
    }
    case 'f32':
      out.set(new Float32Array(w.data.buffer, w.data.byteOffset + row * K * 4, K));
      break;
  }
  return out;
}

export interface MatvecRefInput {
  weight: HostWeight;
  /** x values as the GPU sees them (f16 activations already rounded). */
  x: ArrayLike<number>;
  xStride: number;
  /** Entries: dense → x row p with expert 0; grouped → x row entryRows[p] with expert tileExperts[p / mTile]. */
  M: number;
  grouped?: { tileExperts: ArrayLike<number>; entryRows: ArrayLike<number>; mTile: number };
  epilogue?: MatvecEpilogue;
  residual?: ArrayLike<number>; // (M, nOut) for 'residual' and 'accumulate' (the previous out)
  /** Output columns to compute (default all). */
  columns?: number[];
  /** rmsNorm prologue: x row · (mean_k x² + eps)^-1/2 · weight[k]. */
  norm?: { weight: ArrayLike<number>; eps: number };
}

export interface MatvecRefOutput {
  y: Float64Array; // (M, columns.length); NaN for padding entries
  bound: Float64Array; // same shape: error scale of each output (see header)
  columns: number[];
}

export function matvecRef(r: MatvecRefInput): MatvecRefOutput {
  const w = r.weight;
  const { N, K } = w;
  const silu = r.epilogue === 'silu_mul';
  const nOut = silu ? N / 2 : N;
  const columns = r.columns ?? Array.from({ length: nOut }, (_, i) => i);
  const y = new Float64Array(r.M * columns.length);
  const bound = new Float64Array(r.M * columns.length);
  const rowCache = new Map<number, Float64Array>();
  const rowOf = (e: number, n: number) => {
    const key = e * N + n;
    let v = rowCache.get(key);
    if (!v) {
      v = dequantRow(w, e, n);
      rowCache.set(key, v);
    }
    return v;
  };
  const xCache = new Map<number, Float64Array>();
  const xRow = (xr: number) => {
    let v = xCache.get(xr);
    if (!v) {
      v = Float64Array.from({ length: K }, (_, k) => r.x[xr * r.xStride + k]);
      if (r.norm) {
        const inv = 1 / Math.sqrt(v.reduce((s, a) => s + a * a, 0) / K + r.norm.eps);
        for (let k = 0; k < K; k++) v[k] *= inv * r.norm.weight[k];
      }
      xCache.set(xr, v);
    }
    return v;
  };
  const dot = (e: number, n: number, xr: number): [number, number] => {
    const wr = rowOf(e, n);
    const xv0 = xRow(xr);
    let acc = 0;
    let abs = 0;
    for (let k = 0; k < K; k++) {
      const xv = xv0[k] * (w.preScale ? w.preScale[e * K + k] : 1);
      acc += xv * wr[k];
      abs += Math.abs(xv * wr[k]);
    }
    return [acc, abs];
  };
  for (let p = 0; p < r.M; p++) {
    const xr = r.grouped ? r.grouped.entryRows[p] : p;
    const e = r.grouped ? r.grouped.tileExperts[Math.floor(p / r.grouped.mTile)] : 0;
    columns.forEach((n, j) => {
      const o = p * columns.length + j;
      if (xr === 0xffffffff) {
        y[o] = Number.NaN;
        return;
      }
      let [v, b] = dot(e, n, xr);
      if (silu) {
        const [u, bu] = dot(e, n + N / 2, xr);
        const s = v / (1 + Math.exp(-v));
        // d silu/dg ≤ 1.1: errors in gate and up propagate through the product
        b = 1.1 * b * Math.abs(u) + Math.abs(s) * bu + b * bu;
        v = s * u;
      }
      if (r.epilogue === 'residual' || r.epilogue === 'accumulate') v += r.residual![p * nOut + n];
      y[o] = v;
      bound[o] = b;
    });
  }
  return { y, bound, columns };
}

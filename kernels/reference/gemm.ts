// CPU references for the prefill GEMMs (kernels/matmul_gemm*.wgsl) and the MoE alignment (kernels/moe_align.wgsl),
// in f64 from already-dequantized weights (kernels/reference/quant_formats.ts decodes the packed bytes).
// Each GEMM reference also returns Σ_k |x·s·w| per output: the scale that rounding errors of a sum grow with,
// which the tests turn into a per-element tolerance.
import { moeAlignCapacity, NO_EXPERT, NO_PAIR } from '../moe_align_layout.js';

export interface GemmHost {
  y: Float64Array; // [rows, N]
  absY: Float64Array; // [rows, N]: Σ_k |x[m,k]·s[k]·w[n,k]|
}

/** y[m, n] = Σ_k x[m, k]·s[k]·W[n, k]. x: (M, K) · W: (N, K) · preScale s: (K) or none · y: (M, N) */
export function gemmRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  M: number,
  N: number,
  K: number,
  preScale?: ArrayLike<number>,
): GemmHost {
  const y = new Float64Array(M * N);
  const absY = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k] * (preScale ? preScale[k] : 1) * w[n * K + k];
        acc += p;
        abs += Math.abs(p);
      }
      y[m * N + n] = acc;
      absY[m * N + n] = abs;
    }
  return { y, absY };
}

/** What kernels/moe_align.wgsl writes, computed on the host. */
export interface MoeAlignHost {
  counts: Uint32Array; // [E] pairs routed to each expert
  offsets: Uint32Array; // [E + 1] padded start row of each expert's segment; [E] = total padded rows
  sortedPairs: Uint32Array; // [maxPaddedRows] pair index per row (ascending within an expert), NO_PAIR for padding
  tileExperts: Uint32Array; // [maxTiles] expert of each row tile, NO_EXPERT past the last tile
  numTiles: number;
}

/**
 * Groups (token, expert) pairs by expert: pair p = token·topk + j has expert topkIds[p]; ids ≥ numExperts are not
 * routed here (expert parallelism: another device owns them) and get no row.
 */
export function moeAlignRef(topkIds: ArrayLike<number>, numExperts: number, blockM: number, maxPairs = topkIds.length) {
  const { maxPaddedRows, maxTiles } = moeAlignCapacity(maxPairs, numExperts, blockM);
  const counts = new Uint32Array(numExperts);
  for (let p = 0; p < topkIds.length; p++) if (topkIds[p] < numExperts) counts[topkIds[p]]++;
  const offsets = new Uint32Array(numExperts + 1);
  for (let e = 0; e < numExperts; e++) offsets[e + 1] = offsets[e] + Math.ceil(counts[e] / blockM) * blockM;
  const sortedPairs = new Uint32Array(maxPaddedRows).fill(NO_PAIR);
  const cursor = offsets.slice(0, numExperts);
  for (let p = 0; p < topkIds.length; p++) if (topkIds[p] < numExperts) sortedPairs[cursor[topkIds[p]]++] = p;
  const tileExperts = new Uint32Array(maxTiles).fill(NO_EXPERT);
  for (let e = 0; e < numExperts; e++)
    for (let t = offsets[e] / blockM; t < offsets[e + 1] / blockM; t++) tileExperts[t] = e;
  const host: MoeAlignHost = { counts, offsets, sortedPairs, tileExperts, numTiles: offsets[numExperts] / blockM };
  return host;
}

/**
 * Grouped (MoE) GEMM: for every pair p with expert e = topkIds[p] < E, y[p, n] = r[p]·Σ_k x[p / xRowDiv, k]·s[e, k]·W[e, n, k].
 * Rows of pairs routed elsewhere are NaN (the kernel leaves them untouched).
 * x: (ceil(P / xRowDiv), K) · W: (E, N, K) · preScale: (E, K) · routeWeights r: (P) · y: (P, N)
 */
export function groupedGemmRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  topkIds: ArrayLike<number>,
  numExperts: number,
  N: number,
  K: number,
  xRowDiv: number,
  preScale?: ArrayLike<number>,
  routeWeights?: ArrayLike<number>,
): GemmHost {
  const P = topkIds.length;
  const y = new Float64Array(P * N).fill(Number.NaN);
  const absY = new Float64Array(P * N).fill(Number.NaN);
  for (let p = 0; p < P; p++) {
    const e = topkIds[p];
    if (e >= numExperts) continue;
    const row = Math.floor(p / xRowDiv);
    const r = routeWeights ? routeWeights[p] : 1;
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const v = x[row * K + k] * (preScale ? preScale[e * K + k] : 1) * w[(e * N + n) * K + k];
        acc += v;
        abs += Math.abs(v);
      }
      y[p * N + n] = acc * r;
      absY[p * N + n] = abs * Math.abs(r);
    }
  }
  return { y, absY };
}

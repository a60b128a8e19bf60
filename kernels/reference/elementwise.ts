// CPU references for kernels/elementwise.wgsl, in f64.

/** h + y, elementwise. h: (n) · y: (n) */
export function residualAddRef(h: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = h[i] + y[i];
  return out;
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** gateUp: (rows, 2I), gate in columns [0, I), up in [I, 2I) · returns (rows, I) */
export function siluMulRef(gateUp: ArrayLike<number>, rows: number, intermediate: number): Float64Array {
  const out = new Float64Array(rows * intermediate);
  for (let r = 0; r < rows; r++) {
    const base = r * 2 * intermediate;
    for (let i = 0; i < intermediate; i++)
      out[r * intermediate + i] = silu(gateUp[base + i]) * gateUp[base + intermediate + i];
  }
  return out;
}

/**
 * residual: (T, H) · weights: (T, k) · expertOut: (T·k, H), pair p = t·k + j · returns (T, H):
 * out[t] = residual[t] + Σ_j weights[t, j] · expertOut[t·k + j]
 */
export function moeCombineRef(
  residual: ArrayLike<number>,
  weights: ArrayLike<number>,
  expertOut: ArrayLike<number>,
  tokens: number,
  hidden: number,
  topK: number,
): Float64Array {
  const out = new Float64Array(tokens * hidden);
  for (let t = 0; t < tokens; t++)
    for (let h = 0; h < hidden; h++) {
      let acc = 0;
      for (let j = 0; j < topK; j++) acc += weights[t * topK + j] * expertOut[(t * topK + j) * hidden + h];
      out[t * hidden + h] = residual[t * hidden + h] + acc;
    }
  return out;
}

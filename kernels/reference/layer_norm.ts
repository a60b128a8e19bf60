// CPU reference for kernels/layer_norm.wgsl, in f64 (torch nn.LayerNorm: biased variance, eps inside the sqrt).
// x: (rows, cols) · w, b: (cols) · returns (rows, cols)
export function layerNormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[base + c];
    const mean = s / cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += (x[base + c] - mean) ** 2;
    const rstd = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) out[base + c] = (x[base + c] - mean) * rstd * w[c] + b[c];
  }
  return out;
}

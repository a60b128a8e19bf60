// CPU reference for kernels/rms_norm.wgsl, in f64.
// x: (rows, cols) · w: (cols) · returns (rows, cols)
export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, cols: number, eps: number) {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] ** 2;
    const scale = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] * scale * w[c];
  }
  return out;
}

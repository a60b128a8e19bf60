// CPU reference for kernels/pos_embed_interp.wgsl, in f64: x[t, c] + Σ_j weight[t, j] · table[index[t, j], c].
// x: (rows, cols) · table: (tableRows, cols) · index, weight: (rows, 4) · returns (rows, cols)
export function posEmbedInterpRef(
  x: ArrayLike<number>,
  table: ArrayLike<number>,
  index: ArrayLike<number>,
  weight: ArrayLike<number>,
  rows: number,
  cols: number,
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let t = 0; t < rows; t++)
    for (let c = 0; c < cols; c++) {
      let p = 0;
      for (let j = 0; j < 4; j++) p += weight[4 * t + j] * table[index[4 * t + j] * cols + c];
      out[t * cols + c] = x[t * cols + c] + p;
    }
  return out;
}

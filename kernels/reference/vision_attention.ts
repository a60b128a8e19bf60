// CPU reference for kernels/vision_attention.wgsl, in f64: per segment and head, softmax(q·kᵀ / sqrt(D)) · v over
// the segment's tokens (no mask inside a segment, nothing across segments).
// qkv: [T, 3, H, D] · cuSeqlens: [segments + 1] · returns [T, H, D]; with `onlyRows`, just those query rows
// (the others stay 0: big shapes are checked on sampled rows).
export function visionAttentionRef(
  qkv: ArrayLike<number>,
  cuSeqlens: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  onlyRows?: ReadonlySet<number>,
): Float64Array {
  const D = headDim;
  const row = 3 * heads * D;
  const out = new Float64Array(tokens * heads * D);
  const scale = 1 / Math.sqrt(D);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const [s0, s1] = [cuSeqlens[s], cuSeqlens[s + 1]];
    const p = new Float64Array(s1 - s0);
    for (let h = 0; h < heads; h++)
      for (let t = s0; t < s1; t++) {
        if (onlyRows && !onlyRows.has(t)) continue;
        const qb = t * row + h * D;
        let m = -Infinity;
        for (let k = s0; k < s1; k++) {
          const kb = k * row + (heads + h) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[qb + d] * qkv[kb + d];
          p[k - s0] = dot * scale;
          m = Math.max(m, p[k - s0]);
        }
        let sum = 0;
        for (let k = 0; k < p.length; k++) sum += p[k] = Math.exp(p[k] - m);
        const ob = (t * heads + h) * D;
        for (let k = s0; k < s1; k++) {
          const vb = k * row + (2 * heads + h) * D;
          const w = p[k - s0] / sum;
          for (let d = 0; d < D; d++) out[ob + d] += w * qkv[vb + d];
        }
      }
  }
  return out;
}

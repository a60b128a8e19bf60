// CPU reference for kernels/vision_rope.wgsl: transformers' apply_rotary_pos_emb_vision on q and k of the fused qkv
// rows [T, 3, H, D]. The angles are rounded to f32 as transformers makes them (inv_freq and torch.outer in f32);
// cos, sin and the rotation are in f64. Returns a rotated copy (v copied unchanged).

/** VisionRotaryEmbedding(dim = D/2).inv_freq: 1 / theta^(2j/dim) for j < D/4, each step rounded to f32 as torch. */
function invFreq(headDim: number, theta: number): number[] {
  const dim = headDim / 2;
  return Array.from({ length: dim / 2 }, (_, j) =>
    Math.fround(1 / Math.fround(Math.fround(theta) ** Math.fround((2 * j) / dim))),
  );
}

export function visionRopeRef(
  qkv: ArrayLike<number>,
  positions: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  theta = 10000,
): Float64Array {
  const D = headDim;
  const inv = invFreq(D, theta);
  const q = D / 4;
  const out = Float64Array.from(qkv);
  for (let t = 0; t < tokens; t++)
    for (let h = 0; h < 2 * heads; h++) {
      const base = t * 3 * heads * D + h * D;
      for (let i = 0; i < D / 2; i++) {
        const p = positions[2 * t + (i < q ? 0 : 1)];
        const a = Math.fround(p * inv[i % q]);
        const [c, s] = [Math.cos(a), Math.sin(a)];
        const x1 = qkv[base + i];
        const x2 = qkv[base + D / 2 + i];
        out[base + i] = x1 * c - x2 * s;
        out[base + D / 2 + i] = x2 * c + x1 * s;
      }
    }
  return out;
}

// CPU reference for kernels/rope.wgsl: q_norm / k_norm then interleaved M-RoPE, as HF transformers' qwen3_vl_moe
// computes it (Qwen3VLMoeTextRotaryEmbedding + apply_interleaved_mrope + apply_rotary_pos_emb), in f64 except
// where HF itself rounds to f32: inv_freq and the angle pos·inv_freq are f32 products there, so they are here.
import { ropeInvFreq } from '../rope.js';

export interface RopeRefConfig {
  theta: number;
  mropeSection: readonly [number, number, number];
  eps: number;
}

/** Which position row (0 = t, 1 = h, 2 = w) frequency j reads. */
export function mropeAxis(j: number, section: readonly [number, number, number]): number {
  if (j % 3 === 1 && j < 3 * section[1]) return 1;
  if (j % 3 === 2 && j < 3 * section[2]) return 2;
  return 0;
}

/**
 * x: (T, H, D) one tensor (q or k); positions: (3, T) rows t, h, w; w: norm weight (D).
 * Returns RMSNorm(x)·w rotated by the interleaved M-RoPE of each token's positions, (T, H, D) in f64.
 */
export function qkNormRopeRef(
  x: ArrayLike<number>,
  numTokens: number,
  numHeads: number,
  headDim: number,
  positions: ArrayLike<number>,
  w: ArrayLike<number>,
  c: RopeRefConfig,
): Float64Array {
  const D = headDim;
  const half = D / 2;
  const invFreq = ropeInvFreq(c.theta, D);
  const out = new Float64Array(numTokens * numHeads * D);
  const y = new Float64Array(D);
  for (let t = 0; t < numTokens; t++) {
    const cos = new Float64Array(half);
    const sin = new Float64Array(half);
    for (let j = 0; j < half; j++) {
      const pos = positions[mropeAxis(j, c.mropeSection) * numTokens + t];
      const angle = Math.fround(pos * invFreq[j]);
      cos[j] = Math.cos(angle);
      sin[j] = Math.sin(angle);
    }
    for (let h = 0; h < numHeads; h++) {
      const base = (t * numHeads + h) * D;
      let ss = 0;
      for (let d = 0; d < D; d++) ss += x[base + d] ** 2;
      const r = 1 / Math.sqrt(ss / D + c.eps);
      for (let d = 0; d < D; d++) y[d] = w[d] * x[base + d] * r;
      for (let j = 0; j < half; j++) {
        out[base + j] = y[j] * cos[j] - y[j + half] * sin[j];
        out[base + j + half] = y[j + half] * cos[j] + y[j] * sin[j];
      }
    }
  }
  return out;
}

/** Plain 1-D RoPE (one position per token, rotate_half pairs): what M-RoPE must equal for text tokens. */
export function plainRopeRef(
  x: ArrayLike<number>,
  numTokens: number,
  numHeads: number,
  headDim: number,
  pos: ArrayLike<number>,
  theta: number,
): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(numTokens * numHeads * headDim);
  for (let t = 0; t < numTokens; t++) {
    for (let h = 0; h < numHeads; h++) {
      const base = (t * numHeads + h) * headDim;
      for (let j = 0; j < half; j++) {
        const a = pos[t] / theta ** ((2 * j) / headDim);
        out[base + j] = x[base + j] * Math.cos(a) - x[base + j + half] * Math.sin(a);
        out[base + j + half] = x[base + j + half] * Math.cos(a) + x[base + j] * Math.sin(a);
      }
    }
  }
  return out;
}

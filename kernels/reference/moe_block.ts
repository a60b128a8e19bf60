// CPU reference for kernels/moe_block.ts in f64: HF Qwen3VLMoeTextSparseMoeBlock plus the residual,
//   out[t] = residual[t] + Σ_j w[t, j] · down_e(silu(gate_e(x[t])) · up_e(x[t])),  e = ids[t, j]
// with (ids, w) from moeRouterRef. Alongside the value it carries a first-order bound on the error of an f32
// evaluation (each dot product of length n summed in f32: ≤ (n + 16)·2^-24·Σ|terms|; silu·up, the weighted sum and
// the residual add a few roundings each), propagated through the block, which the GPU test uses as its tolerance.
import { silu } from './elementwise.js';
import { moeRouterRef, routerLogitsRef } from './moe_router.js';

export interface MoeBlockHost {
  E: number;
  H: number;
  I: number;
  topK: number;
  normTopk: boolean;
  router: ArrayLike<number>; // [E, H]
  gateUp: ArrayLike<number>; // [E, 2I, H], gate rows first
  down: ArrayLike<number>; // [E, H, I]
  gateUpPreScale?: ArrayLike<number>; // [E, H]: x · s before gate_up (ModelOpt NVFP4_AWQ pre_quant_scale)
  downPreScale?: ArrayLike<number>; // [E, I]: act · s before down
}

export interface MoeBlockRef {
  out: Float64Array; // (T, H)
  bound: Float64Array; // (T, H) f32 error bound of out
  ids: Uint32Array; // (T, k)
  weights: Float64Array; // (T, k)
  probs: Float64Array; // (T, E)
}

const U = 2 ** -24;

/**
 * x: (T, H) · residual: (T, H) or null (zeros). `ids` overrides the experts chosen (e.g. the GPU's, where a near
 * tie may rank differently in f32); the weights are then the reference probabilities of those experts.
 * f16Operands: the expert matmuls round x and w to f16 (the tensor-core GEMM), loosening the bound.
 */
export function moeBlockRef(
  m: MoeBlockHost,
  x: ArrayLike<number>,
  residual: ArrayLike<number> | null,
  T: number,
  ids?: ArrayLike<number>,
  o: { f16Operands?: boolean } = {},
): MoeBlockRef {
  const { E, H, I, topK: k } = m;
  // relative error of one expert dot product of length n per unit of Σ|terms|; tensor-core GEMMs round both
  // operands to f16 first (2^-11 each)
  const dotErr = (n: number) => (n + 16) * U + (o.f16Operands ? 2 ** -10 : 0);
  const logits = routerLogitsRef(x, m.router, T, E, H);
  const r = moeRouterRef(logits, T, E, k, m.normTopk);
  const chosen = ids ? Uint32Array.from(ids) : r.ids;
  const weights = new Float64Array(T * k);
  const out = new Float64Array(T * H);
  const bound = new Float64Array(T * H);
  const a = new Float64Array(I);
  const da = new Float64Array(I);
  for (let t = 0; t < T; t++) {
    const xt = Array.from({ length: H }, (_, h) => x[t * H + h]);
    // router error: a logit is off by ≤ δl, so a probability by ≤ 2δl relative, a renormalized weight by ≤ 4δl
    let dl = 0;
    for (let e = 0; e < E; e++) {
      let abs = 0;
      for (let h = 0; h < H; h++) abs += Math.abs(xt[h] * m.router[e * H + h]);
      dl = Math.max(dl, (H + 16) * U * abs);
    }
    const relW = 4 * dl + 1e-6;
    let total = 0;
    for (let j = 0; j < k; j++) total += r.probs[t * E + chosen[t * k + j]];
    for (let j = 0; j < k; j++) {
      const p = r.probs[t * E + chosen[t * k + j]];
      weights[t * k + j] = m.normTopk ? p / total : p;
    }
    for (let h = 0; h < H; h++) {
      out[t * H + h] = residual ? residual[t * H + h] : 0;
      bound[t * H + h] = residual ? U * Math.abs(residual[t * H + h]) : 0;
    }
    for (let j = 0; j < k; j++) {
      const e = chosen[t * k + j];
      const wj = weights[t * k + j];
      const xs = xt.map((v, h) => v * (m.gateUpPreScale ? m.gateUpPreScale[e * H + h] : 1));
      for (let i = 0; i < I; i++) {
        let g = 0;
        let u = 0;
        let ga = 0;
        let ua = 0;
        const gRow = (e * 2 * I + i) * H;
        const uRow = (e * 2 * I + I + i) * H;
        for (let h = 0; h < H; h++) {
          g += xs[h] * m.gateUp[gRow + h];
          u += xs[h] * m.gateUp[uRow + h];
          ga += Math.abs(xs[h] * m.gateUp[gRow + h]);
          ua += Math.abs(xs[h] * m.gateUp[uRow + h]);
        }
        const sg = silu(g);
        a[i] = sg * u;
        // |silu'| ≤ 1.1; silu's own exp/divide and the product: a few roundings of |a|
        da[i] = 1.1 * dotErr(H) * ga * Math.abs(u) + Math.abs(sg) * dotErr(H) * ua + 8 * U * Math.abs(a[i]);
      }
      for (let h = 0; h < H; h++) {
        let y = 0;
        let ya = 0;
        let yd = 0;
        const row = (e * H + h) * I;
        for (let i = 0; i < I; i++) {
          const s = m.downPreScale ? m.downPreScale[e * I + i] : 1;
          y += a[i] * s * m.down[row + i];
          ya += Math.abs(a[i] * s * m.down[row + i]);
          yd += da[i] * Math.abs(s * m.down[row + i]);
        }
        out[t * H + h] += wj * y;
        bound[t * H + h] +=
          Math.abs(wj) * (dotErr(I) * ya + yd) + relW * Math.abs(wj * y) + (k + 2) * U * Math.abs(wj) * ya;
      }
    }
  }
  return { out, bound, ids: chosen, weights, probs: r.probs };
}

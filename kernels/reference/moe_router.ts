// CPU reference for kernels/moe_router.wgsl in f64: HF Qwen3-VL-MoE's TopKRouter (logits = x · Wgᵀ, softmax over
// all experts, top-k, renormalize when norm_topk_prob). Ties rank by expert id, lowest first, as the kernel does.

export interface MoeRouterRef {
  ids: Uint32Array; // (T, k) rank order
  weights: Float64Array; // (T, k)
  probs: Float64Array; // (T, E) softmax of the logits
}

/** logits: (T, E) → top-k experts and weights per token. */
export function moeRouterRef(
  logits: ArrayLike<number>,
  tokens: number,
  numExperts: number,
  topK: number,
  normTopk: boolean,
): MoeRouterRef {
  const E = numExperts;
  const ids = new Uint32Array(tokens * topK);
  const weights = new Float64Array(tokens * topK);
  const probs = new Float64Array(tokens * E);
  for (let t = 0; t < tokens; t++) {
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, logits[t * E + e]);
    let s = 0;
    for (let e = 0; e < E; e++) s += Math.exp(logits[t * E + e] - m);
    const p = probs.subarray(t * E, (t + 1) * E);
    for (let e = 0; e < E; e++) p[e] = Math.exp(logits[t * E + e] - m) / s;
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b] - p[a] || a - b);
    let total = 0;
    for (let j = 0; j < topK; j++) total += p[order[j]];
    for (let j = 0; j < topK; j++) {
      ids[t * topK + j] = order[j];
      weights[t * topK + j] = normTopk ? p[order[j]] / total : p[order[j]];
    }
  }
  return { ids, weights, probs };
}

/** Router logits x · Wgᵀ: x (T, H) · w (E, H) → (T, E). */
export function routerLogitsRef(x: ArrayLike<number>, w: ArrayLike<number>, tokens: number, E: number, H: number) {
  const out = new Float64Array(tokens * E);
  for (let t = 0; t < tokens; t++)
    for (let e = 0; e < E; e++) {
      let acc = 0;
      for (let h = 0; h < H; h++) acc += x[t * H + h] * w[e * H + h];
      out[t * E + e] = acc;
    }
  return out;
}

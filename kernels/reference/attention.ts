// CPU reference for the paged attention kernels (attention_decode, attention_prefill), in f64: causal GQA
// attention as HF's eager_attention_forward computes it (scores · 1/sqrt(D), softmax, · V), reading K/V back
// through each sequence's block table with the cache's own element rounding (kernels/reference/kv_cache.ts).
import type { KvCacheShape } from '../kv_cache.js';
import { gatherKvRef } from './kv_cache.js';

/** One sequence of a packed batch: its query rows are tokens [queryStart, queryStart + queryLen) of q. */
export interface SeqRef {
  queryStart: number;
  queryLen: number;
  /** Cached + new tokens; query row i sits at position contextLen − queryLen + i. */
  contextLen: number;
  blockTable: ArrayLike<number>;
}

export interface AttentionRefShape {
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * Causal attention of query rows over dense keys/values: q (Lq, Hq, D) at positions pos0..pos0+Lq−1,
 * k, v (Lk, Hkv, D); query head h reads kv head h / (Hq/Hkv). Returns (Lq, Hq, D).
 */
export function causalAttentionRef(
  s: AttentionRefShape,
  q: ArrayLike<number>,
  queryLen: number,
  pos0: number,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
): Float64Array {
  const { numQHeads: hq, numKvHeads: hkv, headDim: D } = s;
  const group = hq / hkv;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(queryLen * hq * D);
  for (let i = 0; i < queryLen; i++) {
    const n = pos0 + i + 1; // keys 0..pos visible
    const scores = new Float64Array(n);
    for (let h = 0; h < hq; h++) {
      const kvh = Math.floor(h / group);
      const qb = (i * hq + h) * D;
      let m = -Infinity;
      for (let t = 0; t < n; t++) {
        let dot = 0;
        const kb = (t * hkv + kvh) * D;
        for (let d = 0; d < D; d++) dot += q[qb + d] * k[kb + d];
        scores[t] = dot * scale;
        m = Math.max(m, scores[t]);
      }
      let l = 0;
      for (let t = 0; t < n; t++) {
        scores[t] = Math.exp(scores[t] - m);
        l += scores[t];
      }
      for (let t = 0; t < n; t++) {
        const p = scores[t] / l;
        const vb = (t * hkv + kvh) * D;
        for (let d = 0; d < D; d++) out[qb + d] += p * v[vb + d];
      }
    }
  }
  return out;
}

/**
 * Paged attention for a packed batch: q rows `qTokenStride` elements apart (q heads from `qOffset`), K/V read
 * through each sequence's block table (FP8 scales applied). Returns (T, Hq, D) with T = the rows the sequences
 * cover (rows of no sequence stay 0).
 */
export function pagedAttentionRef(
  cache: KvCacheShape,
  kBuf: ArrayBuffer,
  vBuf: ArrayBuffer,
  numQHeads: number,
  q: ArrayLike<number>,
  seqs: readonly SeqRef[],
  opts: { qTokenStride?: number; qOffset?: number; kScale?: number; vScale?: number } = {},
): Float64Array {
  const { numKvHeads: hkv, headDim: D } = cache;
  const rowElems = numQHeads * D;
  const stride = opts.qTokenStride ?? rowElems;
  const qOffset = opts.qOffset ?? 0;
  const T = Math.max(0, ...seqs.map((s) => s.queryStart + s.queryLen));
  const out = new Float64Array(T * rowElems);
  for (const s of seqs) {
    if (s.queryLen === 0) continue;
    const { k, v } = gatherKvRef(cache, kBuf, vBuf, s.blockTable, s.contextLen, opts);
    const qs = new Float64Array(s.queryLen * rowElems);
    for (let i = 0; i < s.queryLen; i++) {
      const src = (s.queryStart + i) * stride + qOffset;
      for (let e = 0; e < rowElems; e++) qs[i * rowElems + e] = q[src + e];
    }
    const o = causalAttentionRef(
      { numQHeads, numKvHeads: hkv, headDim: D },
      qs,
      s.queryLen,
      s.contextLen - s.queryLen,
      k,
      v,
    );
    out.set(o, s.queryStart * rowElems);
  }
  return out;
}

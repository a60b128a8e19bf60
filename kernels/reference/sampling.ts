// CPU reference for kernels/sampling.wgsl, in f64, written the direct way (counting maps, full sorts) so it checks
// the GPU's threshold search rather than repeating it. Same semantics, same random stream:
//   x = logits; suppressed tokens → -inf; repetition (prompt ∪ output tokens: x > 0 ? x / r : x · r);
//   x -= frequency · output count; x -= presence where the output count > 0   (vLLM's order)
//   greedy (temperature 0): argmax x, lowest index on ties
//   else x /= temperature; min_p: keep exp(x - max) ≥ min_p; top-k: keep x ≥ the k-th largest survivor;
//   top-p: keep x when the mass of strictly larger survivors < top_p · (survivor mass) (ties at the cut all kept);
//   token = argmax over the kept of x_i - log(-log u_i), u_i = uniform01(seed, step, i), lowest index on ties.
// Logprobs: log_softmax of y (x, or the raw logits), rank = #{y_j ≥ y_token}, top-N by (y desc, index asc).
// logits: [rows, vocab] · one row per SampleRow.
import type { SampledLogprobs, SampleResult, SampleRow } from '../sampling.js';

/** The kernel's counter-based uniform in (0, 1): pcg4d of (token, step, seed low, seed high), top 23 bits. */
export function samplingUniform(token: number, step: number, seedLo: number, seedHi: number): number {
  const lcg = (v: number) => (Math.imul(v, 1664525) + 1013904223) >>> 0;
  let x = lcg(token);
  let y = lcg(step);
  let z = lcg(seedLo);
  let w = lcg(seedHi);
  const round = () => {
    x = (x + Math.imul(y, w)) >>> 0;
    y = (y + Math.imul(z, x)) >>> 0;
    z = (z + Math.imul(x, y)) >>> 0;
    w = (w + Math.imul(y, z)) >>> 0;
  };
  round();
  x = (x ^ (x >>> 16)) >>> 0;
  y = (y ^ (y >>> 16)) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  w = (w ^ (w >>> 16)) >>> 0;
  round();
  return ((x >>> 9) + 0.5) / 8388608;
}

/** Logits after suppression and penalties (before temperature), in f64. */
export function penalizedLogitsRef(logits: ArrayLike<number>, offset: number, vocab: number, row: SampleRow) {
  const x = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) x[i] = logits[offset + i];
  const ids = row.tokenIds ?? [];
  const numPrompt = row.numPromptTokens ?? 0;
  const inPrompt = new Set(ids.slice(0, numPrompt));
  const counts = new Map<number, number>();
  for (const t of ids.slice(numPrompt)) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const t of row.suppressTokenIds ?? []) x[t] = -Infinity;
  for (const t of new Set(ids)) {
    if (x[t] === -Infinity) continue;
    const c = counts.get(t) ?? 0;
    if (inPrompt.has(t) || c > 0) x[t] = x[t] > 0 ? x[t] / row.repetitionPenalty : x[t] * row.repetitionPenalty;
    x[t] -= row.frequencyPenalty * c;
    if (c > 0) x[t] -= row.presencePenalty;
  }
  return x;
}

function maxOf(values: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

function argmaxLowest(values: ArrayLike<number>, keep: (i: number) => boolean = () => true): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (keep(i) && (best < 0 || values[i] > values[best])) best = i;
  return best;
}

/** Which tokens survive min_p, top-k and top-p for processed logits x (temperature applied). */
export function keptTokensRef(x: Float64Array, row: SampleRow): boolean[] {
  const V = x.length;
  const m = maxOf(x);
  const kept = Array.from(x, (v) => row.minP <= 0 || Math.exp(v - m) >= row.minP);
  const order = () =>
    Array.from({ length: V }, (_, i) => i)
      .filter((i) => kept[i])
      .sort((a, b) => x[b] - x[a]);
  if (row.topK !== null && row.topK >= 1 && row.topK < V) {
    const sorted = order();
    if (sorted.length >= row.topK) {
      const kth = x[sorted[row.topK - 1]];
      for (let i = 0; i < V; i++) if (x[i] < kth) kept[i] = false;
    }
  }
  if (row.topP < 1) {
    const sorted = order();
    const z = sorted.reduce((s, i) => s + Math.exp(x[i] - m), 0);
    let above = 0;
    let cut = -Infinity;
    for (let j = 0; j < sorted.length;) {
      const v = x[sorted[j]];
      if (!(above < row.topP * z)) break;
      cut = v;
      for (; j < sorted.length && x[sorted[j]] === v; j++) above += Math.exp(v - m);
    }
    for (let i = 0; i < V; i++) if (x[i] < cut) kept[i] = false;
  }
  return kept;
}

export function sampleRowRef(logits: ArrayLike<number>, offset: number, vocab: number, row: SampleRow): SampleResult {
  const x = penalizedLogitsRef(logits, offset, vocab, row);
  let tokenId: number;
  if (row.temperature === 0) {
    tokenId = argmaxLowest(x);
  } else {
    for (let i = 0; i < vocab; i++) x[i] /= row.temperature;
    const kept = keptTokensRef(x, row);
    const seedLo = row.seed >>> 0;
    const seedHi = Math.floor(row.seed / 2 ** 32) >>> 0;
    const key = Array.from(x, (v, i) =>
      v === -Infinity ? -Infinity : v - Math.log(-Math.log(samplingUniform(i, row.step, seedLo, seedHi))),
    );
    tokenId = argmaxLowest(key, (i) => kept[i]);
  }
  if (row.numLogprobs === null) return { tokenId, logprobs: null };
  const y = row.logprobSource === 'raw' ? Float64Array.from({ length: vocab }, (_, i) => logits[offset + i]) : x;
  const ym = maxOf(y);
  let sum = 0;
  for (const v of y) if (v > -Infinity) sum += Math.exp(v - ym);
  const lse = ym + Math.log(sum);
  const n = Math.min(row.numLogprobs, vocab);
  const top = Array.from({ length: vocab }, (_, i) => i)
    .sort((a, b) => y[b] - y[a] || a - b)
    .slice(0, n)
    .map((i) => ({ tokenId: i, logprob: y[i] - lse }));
  const rank = y.reduce((c, v) => c + (v >= y[tokenId] ? 1 : 0), 0);
  const logprobs: SampledLogprobs = { tokenId, logprob: y[tokenId] - lse, rank, top };
  return { tokenId, logprobs };
}

/** All rows; row r reads logits[r · vocab …]. */
export function sampleRef(logits: ArrayLike<number>, vocab: number, rows: readonly SampleRow[]): SampleResult[] {
  return rows.map((row, r) => sampleRowRef(logits, r * vocab, vocab, row));
}

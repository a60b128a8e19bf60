// Per-token distribution drift of a candidate against a baseline on the same token sequences, from the top-k
// logprobs both report at every position: KL(baseline ‖ candidate), top-1 agreement, and the largest |Δ logprob|
// of a token both list (logprob = logit − logsumexp, so this is |Δlogit| up to each position's normalizer shift).
// KL is taken over the baseline's top-k tokens plus one "rest" bucket; a token the candidate leaves out of its
// top-k gets the candidate's smallest listed logprob (an upper bound on its probability). With a peaked model and
// k = 20 the top-k hold nearly all the mass, so this is close to the full-vocabulary KL (and never above it but
// for the bound).
import type { PositionLogprobs } from './backend.js';

export interface DriftStats {
  readonly positions: number;
  readonly meanKl: number;
  readonly maxKl: number;
  readonly top1Agreement: number;
  readonly maxAbsDeltaLogprob: number;
}

export function positionKl(p: PositionLogprobs, q: PositionLogprobs): number {
  const qFloor = Math.min(...q.top.values());
  let kl = 0;
  let pMass = 0;
  let qMass = 0;
  for (const [token, lp] of p.top) {
    const lq = Math.min(q.top.get(token) ?? qFloor, 0);
    const pp = Math.exp(lp);
    kl += pp * (lp - lq);
    pMass += pp;
    qMass += Math.exp(lq);
  }
  const pRest = Math.max(0, 1 - pMass);
  const qRest = Math.max(1e-12, 1 - qMass);
  if (pRest > 0) kl += pRest * Math.log(pRest / qRest);
  return Math.max(0, kl);
}

function argmax(top: ReadonlyMap<string, number>): string | null {
  let best: string | null = null;
  let bestLp = -Infinity;
  for (const [t, lp] of top)
    if (lp > bestLp) {
      best = t;
      bestLp = lp;
    }
  return best;
}

/** Drift over sequences scored by both checkpoints (sequence i of each must be the same tokens). */
export function driftStats(
  baseline: readonly PositionLogprobs[][],
  candidate: readonly PositionLogprobs[][],
): DriftStats {
  let positions = 0;
  let klSum = 0;
  let maxKl = 0;
  let agree = 0;
  let maxDelta = 0;
  baseline.forEach((seq, s) => {
    const other = candidate[s];
    if (other.length !== seq.length)
      throw new RangeError(`drift: sequence ${s} has ${seq.length} baseline vs ${other.length} candidate positions`);
    seq.forEach((p, i) => {
      const q = other[i];
      const kl = positionKl(p, q);
      positions++;
      klSum += kl;
      maxKl = Math.max(maxKl, kl);
      if (argmax(p.top) === argmax(q.top)) agree++;
      for (const [token, lp] of p.top) {
        const lq = q.top.get(token);
        if (lq !== undefined) maxDelta = Math.max(maxDelta, Math.abs(lp - lq));
      }
    });
  });
  return {
    positions,
    meanKl: positions ? klSum / positions : Number.NaN,
    maxKl,
    top1Agreement: positions ? agree / positions : Number.NaN,
    maxAbsDeltaLogprob: maxDelta,
  };
}

/** Perplexity = exp(mean negative logprob) over every scored token. */
export function perplexity(seqs: readonly PositionLogprobs[][]): { tokens: number; ppl: number } {
  let n = 0;
  let nll = 0;
  for (const seq of seqs)
    for (const p of seq) {
      n++;
      nll -= p.logprob;
    }
  return { tokens: n, ppl: n ? Math.exp(nll / n) : Number.NaN };
}

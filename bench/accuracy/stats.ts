// Seeded sampling of items (--limit N with --seed) and paired bootstrap confidence intervals for accuracies and
// their difference. A fixed seed gives the same subset and the same intervals on every run.

/** mulberry32: small, fast, good enough for resampling; deterministic for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `limit` distinct indices below `n` drawn with `seed`, in ascending order (all of them when limit ≥ n). */
export function sampleIndices(n: number, limit: number | null, seed: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (limit === null || limit >= n) return all;
  const rand = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, limit).sort((a, b) => a - b);
}

export interface Interval {
  readonly lo: number;
  readonly hi: number;
}

export interface PairedBootstrap {
  readonly baseline: Interval;
  readonly candidate: Interval;
  /** candidate − baseline. */
  readonly delta: Interval;
}

/**
 * Percentile intervals (level, e.g. 0.95) from `resamples` paired resamples of the items: each resample draws n
 * items with replacement and scores both checkpoints on the same draw, so Δ's interval reflects the pairing.
 */
export function pairedBootstrap(
  baseline: readonly boolean[],
  candidate: readonly boolean[],
  { resamples = 1000, level = 0.95, seed = 0 } = {},
): PairedBootstrap {
  const n = baseline.length;
  if (candidate.length !== n) throw new RangeError(`bootstrap: ${n} baseline vs ${candidate.length} candidate items`);
  if (n === 0) {
    const none = { lo: Number.NaN, hi: Number.NaN };
    return { baseline: none, candidate: none, delta: none };
  }
  const rand = seededRandom(seed);
  const b = new Float64Array(resamples);
  const c = new Float64Array(resamples);
  const d = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sb = 0;
    let sc = 0;
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rand() * n);
      if (baseline[k]) sb++;
      if (candidate[k]) sc++;
    }
    b[r] = sb / n;
    c[r] = sc / n;
    d[r] = (sc - sb) / n;
  }
  const alpha = (1 - level) / 2;
  return { baseline: percentiles(b, alpha), candidate: percentiles(c, alpha), delta: percentiles(d, alpha) };
}

function percentiles(values: Float64Array, alpha: number): Interval {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  return { lo: at(alpha), hi: at(1 - alpha) };
}

export function mean(flags: readonly boolean[]): number {
  return flags.length === 0 ? Number.NaN : flags.filter(Boolean).length / flags.length;
}

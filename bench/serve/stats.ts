// Mean / median / percentiles of a list of numbers, as `vllm bench serve` reports them (numpy's linear
// interpolation between closest ranks).
export interface Summary {
  readonly count: number;
  readonly mean: number;
  readonly median: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly std: number;
}

/** The q-th percentile (0 ≤ q ≤ 100) of ascending-sorted values, numpy's default 'linear' method. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** All zeros for an empty list (vLLM prints 0 when, e.g., every request produced one token and TPOT is empty). */
export function summarize(values: readonly number[]): Summary {
  const count = values.length;
  if (count === 0) return { count, mean: 0, median: 0, p99: 0, min: 0, max: 0, std: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((s, v) => s + v, 0) / count;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / count);
  return {
    count,
    mean,
    median: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0],
    max: sorted[count - 1],
    std,
  };
}

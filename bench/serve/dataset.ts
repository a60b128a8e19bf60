// Random prompts for `dawnllm bench serve`, in the spirit of vLLM's RandomDataset: each request gets an input and
// an output length drawn uniformly from [len·(1-r), len·(1+r)], and a prompt of token ids (offset + i + j) mod V
// from a seeded generator, so runs are repeatable and prompts share no prefix by accident. Prompts go to the
// server as token ids, so their length is exact whatever the tokenizer.

export interface RandomDatasetOptions {
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  /** r in [0, 1): lengths vary by ±r around the given ones. */
  rangeRatio: number;
  /** Token ids are drawn from [0, vocabSize) minus `excludedIds`. */
  vocabSize: number;
  excludedIds?: ReadonlySet<number>;
  seed: number;
}

export interface BenchPrompt {
  readonly promptTokenIds: readonly number[];
  readonly outputLen: number;
}

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function randomDataset(options: RandomDatasetOptions): BenchPrompt[] {
  const { numPrompts, inputLen, outputLen, rangeRatio, vocabSize, seed } = options;
  const rand = seededRandom(seed);
  const uniformInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const lengthAround = (len: number) =>
    Math.max(1, uniformInt(Math.floor(len * (1 - rangeRatio)), Math.ceil(len * (1 + rangeRatio))));
  const excluded = options.excludedIds ?? new Set<number>();
  const prompts: BenchPrompt[] = [];
  for (let i = 0; i < numPrompts; i++) {
    const numIn = lengthAround(inputLen);
    const offset = uniformInt(0, vocabSize - 1);
    const promptTokenIds = Array.from({ length: numIn }, (_, j) => {
      let id = (offset + i + j) % vocabSize;
      while (excluded.has(id)) id = (id + 1) % vocabSize;
      return id;
    });
    prompts.push({ promptTokenIds, outputLen: lengthAround(outputLen) });
  }
  return prompts;
}

/**
 * Seconds to wait before each request: 0 for an infinite rate, else exponential gaps (a Poisson process) with
 * mean 1/rate, as vLLM's default (burstiness 1). The first request goes at once.
 */
export function arrivalDelaysS(numRequests: number, requestRate: number, seed: number): number[] {
  if (!Number.isFinite(requestRate)) return new Array<number>(numRequests).fill(0);
  const rand = seededRandom(seed ^ 0x5bd1e995);
  return Array.from({ length: numRequests }, (_, i) => (i === 0 ? 0 : -Math.log(1 - rand()) / requestRate));
}

// What the engine needs from a model: run one scheduled batch (write the new tokens' KV into the slots given,
// attend over the block tables, sample where asked) and say how big its KV pool is. models/<arch> implements it
// on the GPU; engine/fake_model_runner.ts implements it on the CPU for tests.
import type { TokenLogprobs } from './request.js';
import type { ScheduledBatch } from './scheduled_batch.js';

export interface SampledToken {
  readonly seqId: number;
  readonly tokenId: number;
  /** When the entry's SampleSpec.numLogprobs is set, else null. */
  readonly logprobs: TokenLogprobs | null;
}

export interface PromptLogprobsOutput {
  readonly seqId: number;
  /** One per PromptLogprobsSpec.targetTokenIds entry, in order. */
  readonly logprobs: readonly TokenLogprobs[];
}

export interface StepOutput {
  /** Exactly one per batch entry whose `sample` is not null. */
  readonly sampled: readonly SampledToken[];
  /** Exactly one per prefill entry whose `promptLogprobs` is not null. */
  readonly promptLogprobs: readonly PromptLogprobsOutput[];
}

export interface MultiModalCacheStats {
  readonly queries: number;
  readonly hits: number;
}

export interface ModelRunner {
  /** KV blocks the runner allocated (from its measured memory budget; a fixed default on lavapipe). */
  readonly numKvBlocks: number;
  /** Tokens per KV block. */
  readonly blockSize: number;
  /** Longest sequence (prompt + output) the model supports. */
  readonly maxModelLen: number;
  /** Token ids must be below this. */
  readonly vocabSize: number;
  /**
   * Tokens of prompt-logprob prefill chunks one step may carry, all sequences together (each such token's logits are
   * read back); absent: no limit beyond max_num_batched_tokens. The scheduler shortens those chunks to fit.
   */
  readonly maxPromptLogprobTokensPerStep?: number;
  /**
   * Encoder-output cache counters of a multimodal runner (images looked up, and found already encoded), for
   * vllm:mm_cache_queries / vllm:mm_cache_hits; absent for text-only runners.
   */
  multiModalCacheStats?(): MultiModalCacheStats;
  /** Runs one step. The batch's arrays are read only and must not be kept after the promise settles. */
  execute(batch: ScheduledBatch): Promise<StepOutput>;
  /** Frees device memory; execute must not be called afterwards. */
  release(): Promise<void>;
}

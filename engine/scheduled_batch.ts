// What one engine step asks the model to run: the contract between the scheduler and the model runner.
// Each entry is a prefill chunk or a decode step (a discriminated union on `phase`); "no logits needed" is
// `sample: null`, not a flag value.
import type { MultiModalInput } from './request.js';
import type { SamplingParams } from './sampling_params.js';

/** How to pick the next token of one sequence. */
export interface SampleSpec {
  readonly params: SamplingParams;
  /** This sequence's seed. The sampler draws from (seed, outputIndex) so a recompute samples the same token. */
  readonly seed: number;
  /** Which output token is being sampled (0 = the first). */
  readonly outputIndex: number;
  /** Top logprobs to return with the sampled token; null = none. */
  readonly numLogprobs: number | null;
  /** Tokens the sampler must not pick (EOS and stop_token_ids until min_tokens outputs exist). */
  readonly suppressTokenIds: readonly number[];
  /** Prompt then outputs so far (for the penalties); read only. */
  readonly tokenIds: readonly number[];
  readonly numPromptTokens: number;
}

/** Score prompt tokens: the logits at the chunk's position i predict targetTokenIds[i]. */
export interface PromptLogprobsSpec {
  readonly numTop: number;
  /** The prompt tokens at positions start+1 … (at most one per chunk token). */
  readonly targetTokenIds: readonly number[];
}

interface ScheduledSeqBase {
  readonly seqId: number;
  /** Tokens to run this step. */
  readonly tokenIds: readonly number[];
  /** Their positions in the sequence (consecutive). */
  readonly positions: readonly number[];
  /** Where each new token's KV goes: blockTable[pos / blockSize] * blockSize + pos % blockSize. */
  readonly slotMapping: readonly number[];
  /** The sequence's physical blocks, covering positions [0, contextLen). */
  readonly blockTable: readonly number[];
  /** Tokens in the KV cache once this step has run (= last position + 1): the attention length. */
  readonly contextLen: number;
  /** null: no logits needed (a prefill chunk that is not the last). */
  readonly sample: SampleSpec | null;
  /**
   * The request's images (empty for text), shared, never copied. `positions` say which prompt tokens this entry
   * runs, so the runner finds the image rows inside the chunk (a chunk may hold part of an image: chunked prefill
   * splits it, or a prefix-cache hit ends inside it) and, for models with M-RoPE, every token's rotary position.
   */
  readonly mmInputs: readonly MultiModalInput[];
}

/** A run of prompt tokens (or, after preemption, prompt + earlier outputs being recomputed). */
export interface ScheduledPrefill extends ScheduledSeqBase {
  readonly phase: 'prefill';
  /** Leading tokens served from the prefix cache at admission (not run). */
  readonly numCachedTokens: number;
  readonly promptLogprobs: PromptLogprobsSpec | null;
}

/** The one token sampled last step. */
export interface ScheduledDecode extends ScheduledSeqBase {
  readonly phase: 'decode';
}

export type ScheduledSeq = ScheduledPrefill | ScheduledDecode;

export interface ScheduledBatch {
  readonly stepId: number;
  /** Decodes first, then prefill chunks. */
  readonly entries: readonly ScheduledSeq[];
  readonly numTokens: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
}

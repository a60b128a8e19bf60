// What a caller hands the engine (EngineRequest) and what it gets back, one event at a time (RequestOutputEvent).
// Token ids only: text comes from the OutputProcessor the engine was built with.
import type { SamplingParams } from './sampling_params.js';

/**
 * One image (or video clip) already expanded into placeholder tokens in the prompt. The content hash goes into the
 * prefix-cache key of every KV block the span touches, so two prompts with the same tokens but different images
 * never share blocks. The engine never looks inside `data`: it hands the request's inputs to the model runner with
 * every scheduled entry (ScheduledSeq.mmInputs), and the runner encodes the image and places its rows.
 */
export interface MultiModalInput {
  /** A hash of the pixels (e.g. sha256 hex of the preprocessed tensor), stable across requests. */
  readonly contentHash: string;
  /** Index in the prompt of the first placeholder token. */
  readonly tokenStart: number;
  /** How many placeholder tokens the image occupies. */
  readonly numTokens: number;
  /** The runner's payload (for Qwen3-VL a ProcessedImage: pixel values and grid); opaque to the engine. */
  readonly data?: unknown;
}

export interface EngineRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly params: SamplingParams;
  readonly mmInputs?: readonly MultiModalInput[];
  /** performance.now() when the request reached the server; defaults to the time addRequest is called. */
  readonly arrivalMs?: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface TopLogprob {
  readonly tokenId: number;
  readonly logprob: number;
}

/** The chosen token's logprob and the top alternatives at one position. */
export interface TokenLogprobs {
  readonly tokenId: number;
  readonly logprob: number;
  /** 1-based rank of tokenId among the vocabulary at this position. */
  readonly rank: number;
  readonly top: readonly TopLogprob[];
}

/** New tokens of one sequence (index < n), with the text the OutputProcessor made of them. */
export interface DeltaEvent {
  readonly type: 'delta';
  readonly index: number;
  readonly tokenIds: readonly number[];
  readonly textDelta: string;
  /** One per token when params.logprobs was set, else null. */
  readonly logprobs: readonly TokenLogprobs[] | null;
  /** Set on the sequence's last delta. */
  readonly finishReason: FinishReason | null;
  /** The stop string or stop token id that ended it; null for EOS, length and abort. */
  readonly stopReason: string | number | null;
  /** Since arrival. */
  readonly timeMs: number;
}

export interface RequestUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens served from the prefix cache at the request's first admission. */
  readonly cachedPromptTokens: number;
}

export interface RequestTimings {
  /** Arrival → first scheduled. */
  readonly queueMs: number;
  /** First scheduled → first token. */
  readonly prefillMs: number;
  /** Arrival → first token (TTFT); null when aborted before one. */
  readonly firstTokenMs: number | null;
  /** Arrival → end. */
  readonly e2eMs: number;
  /** Per sequence, each output token's time since arrival. */
  readonly tokenTimesMs: readonly (readonly number[])[];
}

/** The last event of a request: every sequence has finished. */
export interface DoneEvent {
  readonly type: 'done';
  readonly usage: RequestUsage;
  readonly timings: RequestTimings;
  /** Position 0 has none (nothing predicts it); null when params.promptLogprobs was null. */
  readonly promptLogprobs: readonly (TokenLogprobs | null)[] | null;
}

export type RequestOutputEvent = DeltaEvent | DoneEvent;

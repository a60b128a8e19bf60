// One sequence: the prompt plus the tokens generated so far, and where its KV lives. A request with n > 1 owns n
// sequences. Plain state plus computed properties; the scheduler and block manager change it, nothing else.
import type { BlockHash } from './block_hash.js';
import type { FinishReason, MultiModalInput, TokenLogprobs } from './request.js';
import type { SamplingParams } from './sampling_params.js';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

export interface SequenceInit {
  seqId: number;
  requestId: string;
  /** Which of the request's n completions. */
  index: number;
  promptTokenIds: readonly number[];
  params: SamplingParams;
  /** The sampler's seed for this sequence (params.seed + index, or drawn by the engine). */
  seed: number;
  /** Output tokens allowed: params.maxTokens, or what fits in the context. */
  maxTokens: number;
  mmInputs?: readonly MultiModalInput[];
  /** For n > 1: the sibling whose prefill fills the prefix cache; this one waits until that prefill is done. */
  prefixLeader?: Sequence | null;
}

export class Sequence {
  readonly seqId: number;
  readonly requestId: string;
  readonly index: number;
  readonly params: SamplingParams;
  readonly seed: number;
  readonly maxTokens: number;
  readonly mmInputs: readonly MultiModalInput[];
  readonly prefixLeader: Sequence | null;
  /** Prompt then outputs; only ever appended to. */
  readonly tokenIds: number[];
  readonly numPromptTokens: number;

  status: SequenceStatus = 'waiting';
  /** Tokens whose KV is written (prefix-cache hits included). Reset to 0 by preemption. */
  numComputedTokens = 0;
  /** Prefix-cache hit at the latest admission. */
  numCachedTokens = 0;
  /** Physical KV block ids, in token order. */
  blockTable: number[] = [];
  /** Prefix-cache keys of the full blocks of tokenIds (maintained by the block manager). */
  readonly blockHashes: BlockHash[] = [];
  finishReason: FinishReason | null = null;
  /** The logprobs of each output token, when params.logprobs is set. */
  readonly outputLogprobs: TokenLogprobs[] = [];
  /** Prompt logprobs gathered so far (position 0 has none), when params.promptLogprobs is set. */
  readonly promptLogprobs: (TokenLogprobs | null)[] = [];

  constructor(init: SequenceInit) {
    this.seqId = init.seqId;
    this.requestId = init.requestId;
    this.index = init.index;
    this.params = init.params;
    this.seed = init.seed;
    this.maxTokens = init.maxTokens;
    this.mmInputs = init.mmInputs ?? [];
    this.prefixLeader = init.prefixLeader ?? null;
    this.tokenIds = [...init.promptTokenIds];
    this.numPromptTokens = init.promptTokenIds.length;
    if (init.params.promptLogprobs !== null) this.promptLogprobs.push(null);
  }

  get numTokens(): number {
    return this.tokenIds.length;
  }

  get numCompletionTokens(): number {
    return this.tokenIds.length - this.numPromptTokens;
  }

  get completionTokenIds(): number[] {
    return this.tokenIds.slice(this.numPromptTokens);
  }

  get lastTokenId(): number {
    return this.tokenIds[this.tokenIds.length - 1];
  }

  /** Tokens still to run through the model before the next sample (the last sampled one, or a prompt remainder). */
  get numUncomputedTokens(): number {
    return this.tokenIds.length - this.numComputedTokens;
  }

  /** Decoding: everything but the last sampled token is in the KV cache. */
  get isDecoding(): boolean {
    return this.numCompletionTokens > 0 && this.numComputedTokens === this.tokenIds.length - 1;
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }

  /** n > 1 siblings wait for the leader's prompt to be in the prefix cache instead of computing it again. */
  get isWaitingForLeader(): boolean {
    const leader = this.prefixLeader;
    return leader !== null && !leader.isFinished && leader.numComputedTokens < leader.numPromptTokens;
  }

  appendToken(tokenId: number): void {
    this.tokenIds.push(tokenId);
  }
}

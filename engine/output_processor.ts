// The seam between token ids and text. The engine calls onTokens with each sequence's new token ids (already
// appended to seq.tokenIds) and streams back the text it returns; a processor that finds a stop string ends the
// sequence with 'stop'. The real one (incremental detokenizer + stop strings) lives beside this file; the one here
// prints ids, for tests and for clients that only want token ids.
import type { SamplingParams } from './sampling_params.js';

/** What a processor may read of a sequence. */
export interface SequenceView {
  readonly seqId: number;
  readonly requestId: string;
  /** Which of the request's n completions. */
  readonly index: number;
  readonly params: SamplingParams;
  /** Prompt then outputs, the new ids included. */
  readonly tokenIds: readonly number[];
  readonly numPromptTokens: number;
  readonly numCompletionTokens: number;
}

export interface ProcessedTokens {
  /** Text to stream for these ids (cut before a stop string unless params.includeStopStrInOutput). */
  readonly textDelta: string;
  /** A stop string was found: the sequence ends here. */
  readonly finished?: 'stop';
  /** The stop string that matched. */
  readonly stopString?: string;
}

export interface OutputProcessor {
  onTokens(seq: SequenceView, newTokenIds: readonly number[]): ProcessedTokens;
  /** The sequence ended (any reason): drop whatever state was kept for it. */
  release(seq: SequenceView): void;
}

/** Text = the ids themselves, "<12><7>"; never stops. */
export class TokenIdOutputProcessor implements OutputProcessor {
  onTokens(_seq: SequenceView, newTokenIds: readonly number[]): ProcessedTokens {
    return { textDelta: newTokenIds.map((id) => `<${id}>`).join('') };
  }

  release(): void {}
}

// The seam between token ids and text. The engine calls onTokens with each sequence's new token ids (already
// appended to seq.tokenIds) and the token-level finish it decided (EOS, stop id, length), and streams back the text
// it returns; a processor that finds a stop string ends the sequence with 'stop'. The real one (incremental
// detokenizer + stop strings) is text_output_processor.ts; the one here prints ids, for tests and for clients that
// only want token ids.
import type { Finish } from './finish_check.js';
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
  /**
   * `finish` is the engine's token-level verdict on the last of these ids (null: the sequence goes on). A finishing
   * call is the sequence's last: whatever text was held back is released with it.
   */
  onTokens(seq: SequenceView, newTokenIds: readonly number[], finish?: Finish | null): ProcessedTokens;
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

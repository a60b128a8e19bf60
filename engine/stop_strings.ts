// When a sequence stops, and which of its text may be released, with vLLM's semantics:
// - stop tokens (checkStopToken): nothing stops before min_tokens output tokens; then an EOS id (unless
//   ignore_eos) or one of the request's stop_token_ids finishes with 'stop'; then max_tokens with 'length'.
// - stop strings (StopStringMatcher): matched on the detokenized text, across token boundaries; the text is cut
//   at the match (before it, or after it with include_stop_str_in_output). Text that could still grow into a stop
//   string is held back until it cannot; vLLM holds back a fixed max(len(stop))-1 characters, this holds back
//   only a tail that is a proper prefix of some stop string, so the released text is the same, just sooner.
// - SequenceStopper ties both to an IncrementalDetokenizer for one sequence.
import { EngineError } from '../core/errors.js';
import { IncrementalDetokenizer, type TokenTextDecoder } from './detokenizer.js';

export interface StopTokenParams {
  /** The tokenizer's eos plus generation_config.json's eos_token_id (see generation_config.ts). */
  eosTokenIds: readonly number[];
  stopTokenIds?: readonly number[];
  ignoreEos?: boolean;
  minTokens?: number;
  maxTokens?: number;
}

export type FinishReason = 'stop' | 'length';

export interface SequenceStop {
  finishReason: FinishReason;
  /** OpenAI/vLLM stop_reason: the stop string or stop token id that matched; null for EOS and length. */
  stopReason: string | number | null;
}

/** Checks the newest output token; numOutputTokens counts it. */
export function checkStopToken(tokenId: number, numOutputTokens: number, params: StopTokenParams): SequenceStop | null {
  if (numOutputTokens < (params.minTokens ?? 0)) return null;
  if (!params.ignoreEos && params.eosTokenIds.includes(tokenId)) return { finishReason: 'stop', stopReason: null };
  if (params.stopTokenIds?.includes(tokenId)) return { finishReason: 'stop', stopReason: tokenId };
  if (params.maxTokens !== undefined && numOutputTokens >= params.maxTokens)
    return { finishReason: 'length', stopReason: null };
  return null;
}

/** Ids the sampler must not pick while fewer than min_tokens were generated (vLLM's all_stop_token_ids). */
export function idsBlockedBeforeMinTokens(params: StopTokenParams): number[] {
  return [...new Set([...params.eosTokenIds, ...(params.stopTokenIds ?? [])])];
}

export interface StopStringOptions {
  stop: readonly string[];
  includeStopStrInOutput?: boolean;
}

export interface StopStringStep {
  /** Text that may be sent to the client now. */
  delta: string;
  /** The stop string that matched in this step, or null. */
  stop: string | null;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  private readonly includeStop: boolean;
  private text = '';
  private numReleased = 0;
  /** A new match must end after this index; text before it was searched already (or could not stop yet). */
  private searchedTo = 0;
  private stopped = false;

  constructor(options: StopStringOptions) {
    const empty = options.stop.findIndex((s) => s.length === 0);
    if (empty >= 0)
      throw new EngineError(
        'DAWN_ERR_ENGINE_STOP_EMPTY',
        `stop[${empty}] is an empty string; stop strings must not be empty`,
      );
    this.stops = options.stop;
    this.includeStop = options.includeStopStrInOutput ?? false;
  }

  /** Adds detokenized text. canStop false (min_tokens not reached) lets no stop string end inside it. */
  push(delta: string, canStop = true): StopStringStep {
    if (this.stopped)
      throw new EngineError('DAWN_ERR_ENGINE_STOPPED', 'StopStringMatcher.push after a stop string matched');
    this.text += delta;
    if (!canStop) {
      this.searchedTo = this.text.length;
      return { delta: this.release(this.text.length - this.heldBackLength()), stop: null };
    }
    const match = this.findEarliestMatch();
    this.searchedTo = this.text.length;
    if (match === null) return { delta: this.release(this.text.length - this.heldBackLength()), stop: null };
    this.stopped = true;
    this.text = this.text.slice(0, this.includeStop ? match.end : match.start);
    return { delta: this.release(this.text.length), stop: match.stop };
  }

  /** At the end of the sequence (EOS, length): the held-back tail, which can no longer become a stop string. */
  flush(): string {
    return this.release(this.text.length);
  }

  /** The output text so far, cut at the stop string if one matched; includes any held-back tail. */
  get fullText(): string {
    return this.text;
  }

  private release(end: number): string {
    if (end <= this.numReleased) return '';
    const delta = this.text.slice(this.numReleased, end);
    this.numReleased = end;
    return delta;
  }

  // The match ending first wins (ties: earlier in the stop list), as if tokens had come one at a time.
  private findEarliestMatch(): { stop: string; start: number; end: number } | null {
    let best: { stop: string; start: number; end: number } | null = null;
    for (const stop of this.stops) {
      const start = this.text.indexOf(stop, Math.max(0, this.searchedTo - stop.length + 1));
      if (start >= 0 && (best === null || start + stop.length < best.end))
        best = { stop, start, end: start + stop.length };
    }
    return best;
  }

  // The longest tail of the text that is a proper prefix of a stop string. Nothing with
  // include_stop_str_in_output (as vLLM): a partial stop string is part of the output either way.
  private heldBackLength(): number {
    if (this.includeStop) return 0;
    let held = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, this.text.length); n > held; n--) {
        if (this.text.endsWith(stop.slice(0, n))) {
          held = n;
          break;
        }
      }
    }
    return held;
  }
}

export interface SequenceStopperOptions extends StopTokenParams {
  stop?: readonly string[];
  includeStopStrInOutput?: boolean;
  skipSpecialTokens?: boolean;
  /** The prompt ids, for the detokenizer's context. */
  promptIds?: readonly number[];
}

export interface SequenceStep {
  /** Text to send to the client for this token (may be ''). */
  delta: string;
  /** Set on the token that ends the sequence. */
  finished: SequenceStop | null;
}

/** One sequence's output: feed each sampled token, get its text delta and whether the sequence is done. */
export class SequenceStopper {
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly matcher: StopStringMatcher;
  private readonly ids: number[] = [];
  private finished: SequenceStop | null = null;

  constructor(
    decoder: TokenTextDecoder,
    private readonly options: SequenceStopperOptions,
  ) {
    this.detokenizer = new IncrementalDetokenizer(decoder, {
      skipSpecialTokens: options.skipSpecialTokens,
      promptIds: options.promptIds,
    });
    this.matcher = new StopStringMatcher({
      stop: options.stop ?? [],
      includeStopStrInOutput: options.includeStopStrInOutput,
    });
  }

  append(tokenId: number): SequenceStep {
    if (this.finished)
      throw new EngineError(
        'DAWN_ERR_ENGINE_STOPPED',
        `SequenceStopper.append(${tokenId}) after the sequence finished`,
      );
    this.ids.push(tokenId);
    const n = this.ids.length;
    const tokenStop = checkStopToken(tokenId, n, this.options);
    // vLLM leaves the stop token out of the text unless include_stop_str_in_output.
    const textIds = tokenStop?.finishReason === 'stop' && !this.options.includeStopStrInOutput ? [] : [tokenId];
    let text = this.detokenizer.push(textIds);
    if (tokenStop) text += this.detokenizer.flush();
    const step = this.matcher.push(text, n > (this.options.minTokens ?? 0));
    if (step.stop !== null) {
      // A stop string wins over a stop token or max_tokens reached on the same token, as in vLLM.
      this.finished = { finishReason: 'stop', stopReason: step.stop };
      return { delta: step.delta, finished: this.finished };
    }
    if (tokenStop) {
      this.finished = tokenStop;
      return { delta: step.delta + this.matcher.flush(), finished: tokenStop };
    }
    return { delta: step.delta, finished: null };
  }

  /** When the engine ends the sequence itself (abort, max_model_len): the text still held back. */
  finish(): string {
    if (this.finished) return '';
    const step = this.matcher.push(this.detokenizer.flush(), false);
    return step.delta + this.matcher.flush();
  }

  /** The whole output text (what a non-streaming response returns). */
  get text(): string {
    return this.matcher.fullText;
  }

  /** Every sampled id, stop tokens included. */
  get outputIds(): readonly number[] {
    return this.ids;
  }
}

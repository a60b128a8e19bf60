// Stop strings, with vLLM's semantics: matched on the detokenized text, across token boundaries; the text is cut
// at the match (before it, or after it with include_stop_str_in_output). Text that could still grow into a stop
// string is held back until it cannot; vLLM holds back a fixed max(len(stop))-1 characters, this holds back only a
// tail that is a proper prefix of some stop string, so the released text is the same, just sooner. Token-level
// stops (EOS, stop_token_ids, length) are finish_check.ts; text_output_processor.ts ties both to the detokenizer.
import { EngineError } from '../core/errors.js';

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

// The OutputProcessor that makes text: per sequence, an incremental UTF-8-safe detokenizer feeding a stop-string
// matcher, with vLLM's rules (v1 detokenizer.update):
// - a stop token (EOS, stop_token_ids) adds no text unless include_stop_str_in_output;
// - stop strings are searched only in text of outputs past min_tokens, across token boundaries, and cut the text
//   (the stop string excluded unless include_stop_str_in_output); a stop string wins over EOS or length on the
//   same token;
// - text that could still grow into a stop string, or ends in half a character, is held back until it cannot,
//   and released when the sequence finishes.
import { IncrementalDetokenizer, type TokenTextDecoder } from './detokenizer.js';
import type { Finish } from './finish_check.js';
import type { OutputProcessor, ProcessedTokens, SequenceView } from './output_processor.js';
import { StopStringMatcher } from './stop_strings.js';

interface SeqText {
  readonly detokenizer: IncrementalDetokenizer;
  readonly matcher: StopStringMatcher;
}

export class TextOutputProcessor implements OutputProcessor {
  private readonly states = new Map<number, SeqText>();

  constructor(private readonly decoder: TokenTextDecoder) {}

  onTokens(seq: SequenceView, newTokenIds: readonly number[], finish: Finish | null = null): ProcessedTokens {
    const state = this.stateOf(seq);
    const { params } = seq;
    const isStopToken = finish?.reason === 'stop';
    const textIds = isStopToken && !params.includeStopStrInOutput ? newTokenIds.slice(0, -1) : newTokenIds;
    // Outputs up to min_tokens may not end in a stop string: their text goes in unsearched.
    const numFirstSearchable = Math.max(0, params.minTokens - (seq.numCompletionTokens - newTokenIds.length));
    let stop: string | null = null;
    let delta = '';
    for (let i = 0; i < textIds.length && stop === null; i++) {
      const step = state.matcher.push(state.detokenizer.push(textIds[i]), i >= numFirstSearchable);
      delta += step.delta;
      stop = step.stop;
    }
    if (stop === null && finish !== null) {
      const step = state.matcher.push(state.detokenizer.flush(), seq.numCompletionTokens > params.minTokens);
      delta += step.delta;
      stop = step.stop;
      if (stop === null) delta += state.matcher.flush();
    }
    return stop === null ? { textDelta: delta } : { textDelta: delta, finished: 'stop', stopString: stop };
  }

  release(seq: SequenceView): void {
    this.states.delete(seq.seqId);
  }

  /** Sequences with state (for tests: every finished one must have been released). */
  get numTracked(): number {
    return this.states.size;
  }

  private stateOf(seq: SequenceView): SeqText {
    let state = this.states.get(seq.seqId);
    if (state === undefined) {
      const { params } = seq;
      state = {
        detokenizer: new IncrementalDetokenizer(this.decoder, {
          skipSpecialTokens: params.skipSpecialTokens,
          promptIds: seq.tokenIds.slice(Math.max(0, seq.numPromptTokens - 8), seq.numPromptTokens),
        }),
        matcher: new StopStringMatcher({ stop: params.stop, includeStopStrInOutput: params.includeStopStrInOutput }),
      };
      this.states.set(seq.seqId, state);
    }
    return state;
  }
}

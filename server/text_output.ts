// The engine's OutputProcessor for real text: an incremental detokenizer and a stop-string matcher per sequence,
// with vLLM's rules (stop token ids and EOS are left out of the text unless include_stop_str_in_output; stop
// strings count only after min_tokens outputs). The engine ends a sequence for EOS or length after onTokens, so
// text still held back then (half a UTF-8 character, a possible stop-string prefix) is flushed in release() and
// kept until the route takes it with takeTail() on the sequence's last delta.
import { IncrementalDetokenizer, type TokenTextDecoder } from '../engine/detokenizer.js';
import type { OutputProcessor, ProcessedTokens, SequenceView } from '../engine/output_processor.js';
import { StopStringMatcher } from '../engine/stop_strings.js';

interface SeqText {
  readonly detokenizer: IncrementalDetokenizer;
  readonly matcher: StopStringMatcher;
  isStopped: boolean;
}

export class TextOutputProcessor implements OutputProcessor {
  private readonly seqs = new Map<number, SeqText>();
  private readonly tails = new Map<string, string>();

  constructor(
    private readonly decoder: TokenTextDecoder,
    private readonly eosTokenIds: readonly number[],
  ) {}

  onTokens(seq: SequenceView, newTokenIds: readonly number[]): ProcessedTokens {
    const state = this.stateOf(seq);
    const { params } = seq;
    const firstCount = seq.numCompletionTokens - newTokenIds.length + 1;
    let textDelta = '';
    for (const [i, tokenId] of newTokenIds.entries()) {
      const numOutputs = firstCount + i;
      const isStopToken =
        numOutputs >= params.minTokens &&
        ((!params.ignoreEos && this.eosTokenIds.includes(tokenId)) || params.stopTokenIds.includes(tokenId));
      let text = isStopToken && !params.includeStopStrInOutput ? '' : state.detokenizer.push(tokenId);
      if (isStopToken) text += state.detokenizer.flush();
      const step = state.matcher.push(text, numOutputs > params.minTokens);
      textDelta += step.delta;
      if (step.stop !== null) {
        state.isStopped = true;
        return { textDelta, finished: 'stop', stopString: step.stop };
      }
    }
    return { textDelta };
  }

  release(seq: SequenceView): void {
    const state = this.seqs.get(seq.seqId);
    this.seqs.delete(seq.seqId);
    if (state === undefined || state.isStopped) return;
    const tail = state.matcher.push(state.detokenizer.flush(), false).delta + state.matcher.flush();
    if (tail !== '') this.tails.set(tailKey(seq.requestId, seq.index), tail);
  }

  /** Text released when the sequence ended (call on its delta with a finish reason); '' when none. */
  takeTail(requestId: string, index: number): string {
    const key = tailKey(requestId, index);
    const tail = this.tails.get(key) ?? '';
    this.tails.delete(key);
    return tail;
  }

  /** Drops whatever a failed request left behind. */
  discard(requestId: string, n: number): void {
    for (let index = 0; index < n; index++) this.tails.delete(tailKey(requestId, index));
  }

  private stateOf(seq: SequenceView): SeqText {
    let state = this.seqs.get(seq.seqId);
    if (state === undefined) {
      const { params } = seq;
      state = {
        detokenizer: new IncrementalDetokenizer(this.decoder, {
          skipSpecialTokens: params.skipSpecialTokens,
          promptIds: seq.tokenIds.slice(0, seq.numPromptTokens),
        }),
        matcher: new StopStringMatcher({ stop: params.stop, includeStopStrInOutput: params.includeStopStrInOutput }),
        isStopped: false,
      };
      this.seqs.set(seq.seqId, state);
    }
    return state;
  }
}

function tailKey(requestId: string, index: number): string {
  return `${requestId}#${index}`;
}

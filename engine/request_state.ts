// The engine's record of one request: its sequences, its output stream and its timestamps, and the events built
// from them. Times are performance.now() milliseconds.
import type { DeltaEvent, DoneEvent, FinishReason, RequestTimings, RequestUsage } from './request.js';
import type { RequestStream } from './request_stream.js';
import type { Sequence } from './sequence.js';

export class RequestState {
  firstScheduledMs: number | null = null;
  firstTokenMs: number | null = null;
  /** Prefix-cache hit of the first admission. */
  cachedPromptTokens = 0;
  /** Per sequence, each output token's time. */
  readonly tokenTimesMs: number[][];

  constructor(
    readonly requestId: string,
    readonly seqs: readonly Sequence[],
    readonly stream: RequestStream,
    readonly arrivalMs: number,
  ) {
    this.tokenTimesMs = seqs.map(() => []);
  }

  get isQueued(): boolean {
    return this.firstScheduledMs === null;
  }

  get isFinished(): boolean {
    return this.seqs.every((s) => s.isFinished);
  }

  get numPromptTokens(): number {
    return this.seqs[0].numPromptTokens;
  }

  /** The previous token time of `seq` (null before its first), after recording `nowMs` as its newest. */
  recordToken(seq: Sequence, nowMs: number): number | null {
    const times = this.tokenTimesMs[seq.index];
    const prev = times.length > 0 ? times[times.length - 1] : null;
    times.push(nowMs);
    this.firstTokenMs ??= nowMs;
    return prev;
  }

  delta(
    seq: Sequence,
    tokenIds: readonly number[],
    textDelta: string,
    finish: { reason: FinishReason; stopReason: string | number | null } | null,
    nowMs: number,
  ): DeltaEvent {
    const numLogprobs = seq.params.logprobs;
    return {
      type: 'delta',
      index: seq.index,
      tokenIds,
      textDelta,
      logprobs: numLogprobs === null ? null : seq.outputLogprobs.slice(seq.outputLogprobs.length - tokenIds.length),
      finishReason: finish?.reason ?? null,
      stopReason: finish?.stopReason ?? null,
      timeMs: nowMs - this.arrivalMs,
    };
  }

  done(nowMs: number): DoneEvent {
    const usage: RequestUsage = {
      promptTokens: this.numPromptTokens,
      completionTokens: this.seqs.reduce((sum, s) => sum + s.numCompletionTokens, 0),
      cachedPromptTokens: this.cachedPromptTokens,
    };
    const scheduledMs = this.firstScheduledMs ?? nowMs;
    const timings: RequestTimings = {
      queueMs: scheduledMs - this.arrivalMs,
      prefillMs: this.firstTokenMs === null ? 0 : this.firstTokenMs - scheduledMs,
      firstTokenMs: this.firstTokenMs === null ? null : this.firstTokenMs - this.arrivalMs,
      e2eMs: nowMs - this.arrivalMs,
      tokenTimesMs: this.tokenTimesMs.map((times) => times.map((t) => t - this.arrivalMs)),
    };
    const leader = this.seqs[0];
    const promptLogprobs = leader.params.promptLogprobs === null ? null : [...leader.promptLogprobs];
    return { type: 'done', usage, timings, promptLogprobs };
  }
}

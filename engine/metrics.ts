// Engine metrics as plain counters and histograms (no Prometheus dependency here): the server reads snapshot()
// and renders it under vLLM's names (vllm:time_to_first_token_seconds, …). Buckets are vLLM's, in seconds.
import type { FinishReason } from './request.js';

export const TTFT_BUCKETS_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0,
  640.0, 2560.0,
] as const;
export const INTER_TOKEN_BUCKETS_S = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
] as const;
export const REQUEST_LATENCY_BUCKETS_S = [
  0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0,
  7680.0,
] as const;
/** Tokens run per step (prefill + decode), vLLM's vllm:iteration_tokens_total buckets. */
export const ITERATION_TOKENS_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384] as const;
/** Engine CPU time per step (scheduling + bookkeeping, the runner's await excluded), in seconds. */
export const STEP_CPU_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1] as const;

export interface HistogramSnapshot {
  /** Upper bounds, ascending; an implicit +Inf bucket follows. */
  readonly buckets: readonly number[];
  /** Cumulative counts per bound (Prometheus `le` semantics); the +Inf count is `count`. */
  readonly cumulativeCounts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    const i = this.buckets.findIndex((le) => value <= le);
    if (i >= 0) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const cumulativeCounts = this.counts.map((c) => (running += c));
    return { buckets: this.buckets, cumulativeCounts, sum: this.sum, count: this.count };
  }
}

/** Gauges read at snapshot time. */
export interface EngineGauges {
  readonly numRunning: number;
  readonly numWaiting: number;
  /** Fraction of KV blocks referenced by a sequence, in [0, 1]. */
  readonly kvUsage: number;
}

export interface MetricsSnapshot extends EngineGauges {
  readonly prefixCacheQueryTokens: number;
  readonly prefixCacheHitTokens: number;
  /** Images the runner looked up in its encoder cache, and how many were already encoded (0 for text runners). */
  readonly mmCacheQueries: number;
  readonly mmCacheHits: number;
  readonly numPreemptions: number;
  readonly promptTokens: number;
  readonly generationTokens: number;
  readonly requestSuccess: Readonly<Record<FinishReason, number>>;
  readonly numSteps: number;
  readonly timeToFirstTokenS: HistogramSnapshot;
  readonly interTokenLatencyS: HistogramSnapshot;
  readonly e2eRequestLatencyS: HistogramSnapshot;
  readonly requestQueueTimeS: HistogramSnapshot;
  readonly stepCpuS: HistogramSnapshot;
  /** First scheduled → first token, per request (vllm:request_prefill_time_seconds). */
  readonly requestPrefillTimeS: HistogramSnapshot;
  /** First token → end, per request that produced one (vllm:request_decode_time_seconds). */
  readonly requestDecodeTimeS: HistogramSnapshot;
  readonly iterationTokens: HistogramSnapshot;
  /**
   * Host time from one runner step's return to the next step's start while requests are in flight: how long the
   * GPU idles between steps (engine bookkeeping, stream consumers, HTTP writes, other timers).
   */
  readonly runnerIdleS: HistogramSnapshot;
  /** The longest engine CPU time of one step so far, seconds. */
  readonly maxStepCpuS: number;
}

/** Counters the engine bumps as things happen; prefix-cache and preemption counts live where they are counted. */
export class EngineMetrics {
  promptTokens = 0;
  generationTokens = 0;
  numSteps = 0;
  readonly requestSuccess: Record<FinishReason, number> = { stop: 0, length: 0, abort: 0 };
  readonly timeToFirstToken = new Histogram(TTFT_BUCKETS_S);
  readonly interTokenLatency = new Histogram(INTER_TOKEN_BUCKETS_S);
  readonly e2eRequestLatency = new Histogram(REQUEST_LATENCY_BUCKETS_S);
  readonly requestQueueTime = new Histogram(REQUEST_LATENCY_BUCKETS_S);
  readonly stepCpu = new Histogram(STEP_CPU_BUCKETS_S);
  readonly requestPrefillTime = new Histogram(REQUEST_LATENCY_BUCKETS_S);
  readonly requestDecodeTime = new Histogram(REQUEST_LATENCY_BUCKETS_S);
  readonly iterationTokens = new Histogram(ITERATION_TOKENS_BUCKETS);
  readonly runnerIdle = new Histogram(STEP_CPU_BUCKETS_S);
  maxStepCpuS = 0;

  snapshot(
    gauges: EngineGauges,
    counts: {
      prefixCacheQueryTokens: number;
      prefixCacheHitTokens: number;
      mmCacheQueries: number;
      mmCacheHits: number;
      numPreemptions: number;
    },
  ): MetricsSnapshot {
    return {
      ...gauges,
      ...counts,
      promptTokens: this.promptTokens,
      generationTokens: this.generationTokens,
      requestSuccess: { ...this.requestSuccess },
      numSteps: this.numSteps,
      timeToFirstTokenS: this.timeToFirstToken.snapshot(),
      interTokenLatencyS: this.interTokenLatency.snapshot(),
      e2eRequestLatencyS: this.e2eRequestLatency.snapshot(),
      requestQueueTimeS: this.requestQueueTime.snapshot(),
      stepCpuS: this.stepCpu.snapshot(),
      requestPrefillTimeS: this.requestPrefillTime.snapshot(),
      requestDecodeTimeS: this.requestDecodeTime.snapshot(),
      iterationTokens: this.iterationTokens.snapshot(),
      runnerIdleS: this.runnerIdle.snapshot(),
      maxStepCpuS: this.maxStepCpuS,
    };
  }
}

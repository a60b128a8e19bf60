// GET /metrics: Prometheus text through prom-client under vLLM's metric names (vllm:…, label model_name), so the
// vLLM Grafana dashboards work unchanged. Gauges and counters are read from the engine's snapshot at scrape time;
// per-request histograms are observed here when a request ends, from its timings (the engine's own snapshot
// histograms cannot be replayed into prom-client). Buckets are vLLM's (engine/metrics.ts).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { DoneEvent, FinishReason } from '../engine/request.js';
import {
  INTER_TOKEN_BUCKETS_S,
  type MetricsSnapshot,
  REQUEST_LATENCY_BUCKETS_S,
  TTFT_BUCKETS_S,
} from '../engine/metrics.js';

type Label = 'model_name';

/** Per-image preprocessing (load + decode + resize + patchify): 1 ms … 10 s. */
export const IMAGE_PREPROCESS_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, … up to max. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exp = 1; ; exp *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * exp > max) return out;
      out.push(m * exp);
    }
  }
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly labels: Record<Label, string>;
  private readonly ttft: Histogram<Label>;
  private readonly interToken: Histogram<Label>;
  private readonly timePerOutputToken: Histogram<Label>;
  private readonly e2e: Histogram<Label>;
  private readonly queue: Histogram<Label>;
  private readonly prefill: Histogram<Label>;
  private readonly decode: Histogram<Label>;
  private readonly inference: Histogram<Label>;
  private readonly promptTokens: Histogram<Label>;
  private readonly generationTokens: Histogram<Label>;
  private readonly paramsN: Histogram<Label>;
  private readonly paramsMaxTokens: Histogram<Label>;
  private readonly imagesProcessed: Counter<Label | 'source'>;
  private readonly imagePreprocess: Histogram<Label>;

  /** `snapshot` returns null while no engine exists (loading). */
  constructor(modelName: string, maxModelLen: number, snapshot: () => MetricsSnapshot | null) {
    this.labels = { model_name: modelName };
    const registers = [this.registry];
    const labelNames: Label[] = ['model_name'];
    const histogram = (name: string, help: string, buckets: readonly number[]) =>
      new Histogram<Label>({ name, help, buckets: [...buckets], labelNames, registers });
    this.ttft = histogram(
      'vllm:time_to_first_token_seconds',
      'Histogram of time to first token in seconds.',
      TTFT_BUCKETS_S,
    );
    this.interToken = histogram(
      'vllm:inter_token_latency_seconds',
      'Histogram of inter-token latency in seconds.',
      INTER_TOKEN_BUCKETS_S,
    );
    this.timePerOutputToken = histogram(
      'vllm:time_per_output_token_seconds',
      'Histogram of time per output token in seconds (deprecated name of inter_token_latency).',
      INTER_TOKEN_BUCKETS_S,
    );
    this.e2e = histogram(
      'vllm:e2e_request_latency_seconds',
      'Histogram of e2e request latency in seconds.',
      REQUEST_LATENCY_BUCKETS_S,
    );
    this.queue = histogram(
      'vllm:request_queue_time_seconds',
      'Histogram of time spent in WAITING phase for request.',
      REQUEST_LATENCY_BUCKETS_S,
    );
    this.prefill = histogram(
      'vllm:request_prefill_time_seconds',
      'Histogram of time spent in PREFILL phase for request.',
      REQUEST_LATENCY_BUCKETS_S,
    );
    this.decode = histogram(
      'vllm:request_decode_time_seconds',
      'Histogram of time spent in DECODE phase for request.',
      REQUEST_LATENCY_BUCKETS_S,
    );
    this.inference = histogram(
      'vllm:request_inference_time_seconds',
      'Histogram of time spent in RUNNING phase for request.',
      REQUEST_LATENCY_BUCKETS_S,
    );
    const tokenBuckets = buckets125(maxModelLen);
    this.promptTokens = histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokenBuckets);
    this.generationTokens = histogram(
      'vllm:request_generation_tokens',
      'Number of generation tokens processed.',
      tokenBuckets,
    );
    this.paramsN = histogram('vllm:request_params_n', 'Histogram of the n request parameter.', [1, 2, 5, 10, 20]);
    this.paramsMaxTokens = histogram(
      'vllm:request_params_max_tokens',
      'Histogram of the max_tokens request parameter.',
      tokenBuckets,
    );

    const fromSnapshot = (
      kind: 'gauge' | 'counter',
      name: string,
      help: string,
      read: (s: MetricsSnapshot) => number,
    ) => {
      const labels = this.labels;
      if (kind === 'gauge')
        new Gauge<Label>({
          name,
          help,
          labelNames,
          registers,
          collect() {
            const s = snapshot();
            this.set(labels, s === null ? 0 : read(s));
          },
        });
      else
        new Counter<Label>({
          name,
          help,
          labelNames,
          registers,
          collect() {
            const s = snapshot();
            this.reset();
            this.inc(labels, s === null ? 0 : read(s));
          },
        });
    };
    fromSnapshot(
      'gauge',
      'vllm:num_requests_running',
      'Number of requests in model execution batches.',
      (s) => s.numRunning,
    );
    fromSnapshot(
      'gauge',
      'vllm:num_requests_waiting',
      'Number of requests waiting to be processed.',
      (s) => s.numWaiting,
    );
    fromSnapshot('gauge', 'vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (s) => s.kvUsage);
    fromSnapshot(
      'gauge',
      'vllm:gpu_cache_usage_perc',
      'GPU KV-cache usage (deprecated name of kv_cache_usage_perc).',
      (s) => s.kvUsage,
    );
    fromSnapshot('counter', 'vllm:prompt_tokens_total', 'Number of prefill tokens processed.', (s) => s.promptTokens);
    fromSnapshot(
      'counter',
      'vllm:generation_tokens_total',
      'Number of generation tokens processed.',
      (s) => s.generationTokens,
    );
    fromSnapshot(
      'counter',
      'vllm:num_preemptions_total',
      'Cumulative number of preemption from the engine.',
      (s) => s.numPreemptions,
    );
    fromSnapshot(
      'counter',
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
      (s) => s.prefixCacheQueryTokens,
    );
    fromSnapshot(
      'counter',
      'vllm:prefix_cache_hits_total',
      'Prefix cache hits, in terms of number of cached tokens.',
      (s) => s.prefixCacheHitTokens,
    );
    // The runner's encoded-image cache (a repeated screenshot runs through the vision tower once).
    fromSnapshot(
      'counter',
      'vllm:mm_cache_queries_total',
      'Multi-modal cache queries, in terms of number of queried items.',
      (s) => s.mmCacheQueries,
    );
    fromSnapshot(
      'counter',
      'vllm:mm_cache_hits_total',
      'Multi-modal cache hits, in terms of number of cached items.',
      (s) => s.mmCacheHits,
    );
    const labels = this.labels;
    new Counter<Label | 'finished_reason'>({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
      collect() {
        const s = snapshot();
        this.reset();
        for (const reason of ['stop', 'length', 'abort'] as FinishReason[])
          this.inc({ ...labels, finished_reason: reason }, s === null ? 0 : s.requestSuccess[reason]);
      },
    });
    // Image intake (vLLM has no per-image preprocessing metric, so these are dawnllm's own).
    this.imagesProcessed = new Counter<Label | 'source'>({
      name: 'dawnllm:images_processed_total',
      help: 'Images loaded, decoded and preprocessed for requests, by source (data, file, http).',
      labelNames: ['model_name', 'source'],
      registers,
    });
    this.imagePreprocess = histogram(
      'dawnllm:image_preprocess_seconds',
      'Histogram of the time to load, decode and preprocess one image, in seconds.',
      IMAGE_PREPROCESS_BUCKETS_S,
    );
    collectDefaultMetrics({ register: this.registry });
  }

  /** One request image was loaded, decoded and preprocessed (server/media/image_inputs.ts). */
  imageProcessed(source: string, seconds: number): void {
    this.imagesProcessed.inc({ ...this.labels, source });
    this.imagePreprocess.observe(this.labels, seconds);
  }

  /** A request ended: its latencies and sizes go into the histograms. */
  observeRequest(done: DoneEvent, params: { n: number; maxTokens: number | null }): void {
    const l = this.labels;
    const { timings, usage } = done;
    const s = (ms: number) => ms / 1000;
    this.e2e.observe(l, s(timings.e2eMs));
    this.queue.observe(l, s(timings.queueMs));
    this.promptTokens.observe(l, usage.promptTokens);
    this.generationTokens.observe(l, usage.completionTokens);
    this.paramsN.observe(l, params.n);
    if (params.maxTokens !== null) this.paramsMaxTokens.observe(l, params.maxTokens);
    if (timings.firstTokenMs === null) return;
    this.ttft.observe(l, s(timings.firstTokenMs));
    this.prefill.observe(l, s(timings.prefillMs));
    const lastMs = Math.max(timings.firstTokenMs, ...timings.tokenTimesMs.map((t) => t[t.length - 1] ?? 0));
    this.decode.observe(l, s(lastMs - timings.firstTokenMs));
    this.inference.observe(l, s(lastMs - timings.firstTokenMs + timings.prefillMs));
    for (const times of timings.tokenTimesMs)
      for (let i = 1; i < times.length; i++) {
        this.interToken.observe(l, s(times[i] - times[i - 1]));
        this.timePerOutputToken.observe(l, s(times[i] - times[i - 1]));
      }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

// vLLM's calculate_metrics and its result table: TTFT, TPOT = (latency - TTFT) / (output tokens - 1) for requests
// with more than one token, ITL over every inter-chunk gap, E2E latency; request, output and total token
// throughput over the benchmark's wall time. Times in the table and the JSON are milliseconds.
import type { RequestResult } from './request.js';
import { summarize, type Summary } from './stats.js';

export interface ServerSideStats {
  /** Mean engine CPU time per step over the run (from /metrics), ms; null when the server does not export it. */
  stepCpuMeanMs: number | null;
  numSteps: number | null;
  numPreemptions: number | null;
  /** Encoded-image cache lookups and hits over the run (vllm:mm_cache_*); null when not exported. */
  mmCacheQueries: number | null;
  mmCacheHits: number | null;
}

/** What the image requests carried (chat runs with --image or --image-size). */
export interface ImageMetrics {
  perRequest: number;
  width: number;
  height: number;
  format: string;
  /** 'synthetic': distinct images per request; 'file': the same file in every request. */
  source: 'synthetic' | 'file';
  /** Encoded bytes per image, mean over the run's images. */
  meanBytes: number;
  /** Per successful request: usage.prompt_tokens minus the text-only chat prompt's tokens; null if unknown. */
  imageTokens: Summary | null;
  /** Per successful request: usage.prompt_tokens (template, text and images); null without usage. */
  serverPromptTokens: Summary | null;
}

export interface BenchConfig {
  readonly model: string;
  readonly url: string;
  readonly numPrompts: number;
  readonly inputLen: number;
  readonly outputLen: number;
  readonly maxConcurrency: number | null;
  readonly requestRate: number;
  /** vLLM's backend names: 'openai' for /v1/completions, 'openai-chat' for /v1/chat/completions. */
  readonly backend: 'openai' | 'openai-chat';
}

export interface BenchMetrics {
  completed: number;
  failed: number;
  durationS: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  /** Largest number of requests in flight at once. */
  maxConcurrencySeen: number;
  ttftMs: Summary;
  tpotMs: Summary;
  itlMs: Summary;
  e2elMs: Summary;
  /** Set on image runs. */
  images?: ImageMetrics;
}

export function calculateMetrics(results: readonly RequestResult[], durationS: number): BenchMetrics {
  const ok = results.filter((r) => r.success);
  const ms = (values: readonly number[]) => summarize(values.map((s) => s * 1000));
  const totalInputTokens = ok.reduce((n, r) => n + r.promptLen, 0);
  const totalOutputTokens = ok.reduce((n, r) => n + r.outputTokens, 0);
  const tpots = ok.filter((r) => r.outputTokens > 1).map((r) => (r.latency - r.ttft) / (r.outputTokens - 1));
  return {
    completed: ok.length,
    failed: results.length - ok.length,
    durationS,
    totalInputTokens,
    totalOutputTokens,
    requestThroughput: ok.length / durationS,
    outputThroughput: totalOutputTokens / durationS,
    totalTokenThroughput: (totalInputTokens + totalOutputTokens) / durationS,
    maxConcurrencySeen: maxOverlap(ok),
    ttftMs: ms(ok.map((r) => r.ttft)),
    tpotMs: ms(tpots),
    itlMs: ms(ok.flatMap((r) => r.itl)),
    e2elMs: ms(ok.map((r) => r.latency)),
  };
}

/** The most requests whose [start, start + latency] intervals overlap. */
function maxOverlap(results: readonly RequestResult[]): number {
  const edges = results.flatMap((r) => [
    [r.startMs, 1],
    [r.startMs + r.latency * 1000, -1],
  ]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d));
  return max;
}

export function formatReport(config: BenchConfig, m: BenchMetrics, server: ServerSideStats): string {
  const line = (label: string, value: string | number) =>
    `${label.padEnd(40)} ${typeof value === 'number' ? fmt(value) : value}`;
  const title = (text: string, fill = '-') => {
    const side = Math.max(0, 50 - text.length);
    return `${fill.repeat(Math.floor(side / 2))}${text}${fill.repeat(Math.ceil(side / 2))}`;
  };
  const section = (name: string, short: string, s: Summary) => [
    title(name),
    line(`Mean ${short} (ms):`, s.mean),
    line(`Median ${short} (ms):`, s.median),
    line(`P99 ${short} (ms):`, s.p99),
  ];
  const rows = [
    title(' Serving Benchmark Result ', '='),
    line('Successful requests:', String(m.completed)),
    ...(m.failed > 0 ? [line('Failed requests:', String(m.failed))] : []),
    line('Maximum request concurrency:', config.maxConcurrency === null ? 'unlimited' : String(config.maxConcurrency)),
    line('Request rate configured (RPS):', Number.isFinite(config.requestRate) ? config.requestRate : 'inf'),
    line('Benchmark duration (s):', m.durationS),
    line('Total input tokens:', String(m.totalInputTokens)),
    line('Total generated tokens:', String(m.totalOutputTokens)),
    line('Request throughput (req/s):', m.requestThroughput),
    line('Output token throughput (tok/s):', m.outputThroughput),
    line('Total Token throughput (tok/s):', m.totalTokenThroughput),
    ...(m.images ? imageRows(m.images, line, title) : []),
    ...section('Time to First Token', 'TTFT', m.ttftMs),
    ...section('Time per Output Token (excl. 1st token)', 'TPOT', m.tpotMs),
    ...section('Inter-token Latency', 'ITL', m.itlMs),
    ...section('End-to-end Latency', 'E2EL', m.e2elMs),
    title('Server'),
    line('Engine CPU per step, mean (ms):', fmtOrNa(server.stepCpuMeanMs)),
    line('Engine steps:', fmtOrNa(server.numSteps, 0)),
    line('Preemptions:', fmtOrNa(server.numPreemptions, 0)),
    ...(m.images
      ? [
          line(
            'Image cache hits / queries:',
            server.mmCacheHits === null || server.mmCacheQueries === null
              ? 'n/a (not in /metrics)'
              : `${server.mmCacheHits} / ${server.mmCacheQueries}`,
          ),
        ]
      : []),
    '='.repeat(50),
  ];
  return `${rows.join('\n')}\n`;
}

function imageRows(
  im: ImageMetrics,
  line: (label: string, value: string | number) => string,
  title: (text: string) => string,
): string[] {
  const source = im.source === 'synthetic' ? 'synthetic, distinct per request' : 'file, the same in every request';
  return [
    title('Images'),
    line('Images per request:', String(im.perRequest)),
    line('Image size (px):', `${im.width}x${im.height} ${im.format.toUpperCase()} (${source})`),
    line('Encoded bytes per image, mean:', String(Math.round(im.meanBytes))),
    line(
      'Image tokens per request, mean:',
      im.imageTokens === null ? 'n/a (needs usage and POST /tokenize)' : im.imageTokens.mean,
    ),
    line(
      'Server prompt tokens per request, mean:',
      im.serverPromptTokens === null ? 'n/a (no usage)' : im.serverPromptTokens.mean,
    ),
  ];
}

function fmt(v: number, digits = 2): string {
  return v.toFixed(digits);
}

function fmtOrNa(v: number | null, digits = 3): string {
  return v === null ? 'n/a (not in /metrics)' : fmt(v, digits);
}

/** The JSON written with --save-result: vLLM's field names where they exist. */
export function resultJson(config: BenchConfig, m: BenchMetrics, server: ServerSideStats): Record<string, unknown> {
  const stats = (prefix: string, s: Summary) => ({
    [`mean_${prefix}_ms`]: s.mean,
    [`median_${prefix}_ms`]: s.median,
    [`std_${prefix}_ms`]: s.std,
    [`p99_${prefix}_ms`]: s.p99,
  });
  return {
    date: new Date().toISOString(),
    backend: config.backend,
    model_id: config.model,
    base_url: config.url,
    num_prompts: config.numPrompts,
    random_input_len: config.inputLen,
    random_output_len: config.outputLen,
    request_rate: Number.isFinite(config.requestRate) ? config.requestRate : 'inf',
    max_concurrency: config.maxConcurrency,
    duration: m.durationS,
    completed: m.completed,
    failed: m.failed,
    total_input_tokens: m.totalInputTokens,
    total_output_tokens: m.totalOutputTokens,
    request_throughput: m.requestThroughput,
    output_throughput: m.outputThroughput,
    total_token_throughput: m.totalTokenThroughput,
    max_concurrency_seen: m.maxConcurrencySeen,
    ...stats('ttft', m.ttftMs),
    ...stats('tpot', m.tpotMs),
    ...stats('itl', m.itlMs),
    ...stats('e2el', m.e2elMs),
    engine_step_cpu_mean_ms: server.stepCpuMeanMs,
    engine_steps: server.numSteps,
    num_preemptions: server.numPreemptions,
    ...(m.images ? imageJson(m.images, server) : {}),
  };
}

function imageJson(im: ImageMetrics, server: ServerSideStats): Record<string, unknown> {
  return {
    num_images_per_request: im.perRequest,
    image_width: im.width,
    image_height: im.height,
    image_format: im.format,
    image_source: im.source,
    mean_image_bytes: im.meanBytes,
    mean_image_tokens: im.imageTokens?.mean ?? null,
    mean_server_prompt_tokens: im.serverPromptTokens?.mean ?? null,
    mm_cache_queries: server.mmCacheQueries,
    mm_cache_hits: server.mmCacheHits,
  };
}

// The `dawnllm bench serve` driver: finds the served model, sends one test request, then sends every prompt on a
// Poisson schedule (or all at once) through a --max-concurrency gate, and times each stream as a client sees it.
import { DawnError } from '../../core/errors.js';
import { arrivalDelaysS, type BenchPrompt, randomDataset } from './dataset.js';
import { type BenchConfig, type BenchMetrics, calculateMetrics, type ServerSideStats } from './report.js';
import { type RequestResult, sendCompletion } from './request.js';
import { scrapeMetrics, serverStatsBetween } from './server_metrics.js';

export interface ServeBenchOptions {
  baseUrl: string;
  endpoint: string;
  /** null: the first model GET /v1/models lists. */
  model: string | null;
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  rangeRatio: number;
  /** null: no limit. */
  maxConcurrency: number | null;
  /** Requests per second; Infinity sends all at once. */
  requestRate: number;
  seed: number;
  ignoreEos: boolean;
  vocabSize: number;
  excludedIds?: ReadonlySet<number>;
  apiKey?: string;
  log?: (line: string) => void;
}

export interface ServeBenchResult {
  config: BenchConfig;
  metrics: BenchMetrics;
  server: ServerSideStats;
  results: RequestResult[];
}

export class BenchError extends DawnError {}

export async function runServeBenchmark(options: ServeBenchOptions): Promise<ServeBenchResult> {
  const log = options.log ?? (() => undefined);
  const url = new URL(options.endpoint, options.baseUrl).toString();
  const model = options.model ?? (await firstModel(options.baseUrl, options.apiKey));
  const prompts = randomDataset({ ...options, excludedIds: options.excludedIds });
  const send = (p: BenchPrompt) =>
    sendCompletion({ url, model, ...p, ignoreEos: options.ignoreEos, apiKey: options.apiKey });

  log(`Starting initial single prompt test run (model ${model}, ${url})...`);
  const test = await send(prompts[0]);
  if (!test.success)
    throw new BenchError('DAWN_ERR_BENCH_TEST_REQUEST', `bench serve: the test request failed: ${test.error}`, {
      hint: 'check --base-url / --endpoint / --model and that the server is up',
    });
  log('Initial test run completed. Starting main benchmark run...');
  const rate = Number.isFinite(options.requestRate) ? `${options.requestRate} req/s` : 'inf';
  log(`Traffic request rate: ${rate}; maximum request concurrency: ${options.maxConcurrency ?? 'unlimited'}`);

  const before = await scrapeMetrics(options.baseUrl, options.apiKey);
  const gate = new Gate(options.maxConcurrency ?? Infinity);
  const delays = arrivalDelaysS(prompts.length, options.requestRate, options.seed);
  const started = performance.now();
  const pending: Promise<RequestResult>[] = [];
  for (const [i, prompt] of prompts.entries()) {
    if (delays[i] > 0) await sleep(delays[i] * 1000);
    pending.push(gate.run(() => send(prompt)));
  }
  const results = await Promise.all(pending);
  const durationS = (performance.now() - started) / 1000;
  const after = await scrapeMetrics(options.baseUrl, options.apiKey);

  const failures = results.filter((r) => !r.success);
  if (failures.length > 0) log(`${failures.length} requests failed; the first: ${failures[0].error}`);
  const config: BenchConfig = {
    model,
    url,
    numPrompts: options.numPrompts,
    inputLen: options.inputLen,
    outputLen: options.outputLen,
    maxConcurrency: options.maxConcurrency,
    requestRate: options.requestRate,
  };
  return { config, metrics: calculateMetrics(results, durationS), server: serverStatsBetween(before, after), results };
}

async function firstModel(baseUrl: string, apiKey?: string): Promise<string> {
  const where = new URL('/v1/models', baseUrl).toString();
  let body: { data?: { id?: string }[] };
  try {
    const response = await fetch(where, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    body = (await response.json()) as typeof body;
  } catch (error) {
    throw new BenchError(
      'DAWN_ERR_BENCH_NO_MODEL',
      `bench serve: could not list the served models at ${where}: ${(error as Error).message}`,
      { hint: 'pass --model, or check --base-url' },
    );
  }
  const id = body.data?.[0]?.id;
  if (typeof id !== 'string')
    throw new BenchError('DAWN_ERR_BENCH_NO_MODEL', `bench serve: ${where} lists no model`, { hint: 'pass --model' });
  return id;
}

/** At most `limit` tasks at once; the others wait in arrival order. */
class Gate {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The `dawnllm bench serve` driver: finds the served model, sends one test request, then sends every prompt on a
// Poisson schedule (or all at once) through a --max-concurrency gate, and times each stream as a client sees it.
// Chat runs (images, or a chat endpoint) first turn each prompt's ids into text through the server and make the
// images, untimed; the test request gets images of its own so it warms no cache the run then hits.
import { BenchError } from './errors.js';
import { arrivalDelaysS, randomDataset } from './dataset.js';
import { type ChatPrompt, chatPrompts } from './chat_prompts.js';
import { type BenchImage, benchImages, type ImageSpec } from './image.js';
import {
  type BenchConfig,
  type BenchMetrics,
  calculateMetrics,
  type ImageMetrics,
  type ServerSideStats,
} from './report.js';
import { type RequestResult, sendChatCompletion, sendCompletion } from './request.js';
import { summarize } from './stats.js';
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
  /** Chat requests with these images (the endpoint should then be a chat one). */
  images?: { spec: ImageSpec; perRequest: number } | null;
}

/** Image runs, and any run against a chat endpoint, send chat requests. */
export function isChatRun(options: Pick<ServeBenchOptions, 'endpoint' | 'images'>): boolean {
  return (options.images ?? null) !== null || /chat\/completions\/?$/.test(options.endpoint);
}

export interface ServeBenchResult {
  config: BenchConfig;
  metrics: BenchMetrics;
  server: ServerSideStats;
  results: RequestResult[];
}

export { BenchError };

export async function runServeBenchmark(options: ServeBenchOptions): Promise<ServeBenchResult> {
  const log = options.log ?? (() => undefined);
  const url = new URL(options.endpoint, options.baseUrl).toString();
  const model = options.model ?? (await firstModel(options.baseUrl, options.apiKey));
  const prompts = randomDataset({ ...options, excludedIds: options.excludedIds });
  const common = { url, model, ignoreEos: options.ignoreEos, apiKey: options.apiKey };
  const isChat = isChatRun(options);
  let texts: ChatPrompt[] = [];
  let imageSets: BenchImage[][] | null = null;
  if (options.images) {
    const { spec, perRequest } = options.images;
    if (spec.kind === 'synthetic')
      log(`Drawing ${(prompts.length + 1) * perRequest} synthetic ${spec.width}x${spec.height} screenshots...`);
    imageSets = await benchImages(spec, prompts.length + 1, perRequest, options.seed);
  }
  if (isChat) {
    log(`Turning ${prompts.length} prompts into text with the server's /detokenize...`);
    texts = await chatPrompts({ baseUrl: options.baseUrl, model, apiKey: options.apiKey }, prompts);
  }
  /** Prompt i, with image set `imageSet` (the test request's is the last). */
  const send = (i: number, imageSet = i) => {
    const p = prompts[i];
    if (!isChat) return sendCompletion({ ...common, ...p });
    const imageUrls = imageSets?.[imageSet].map((im) => im.dataUrl) ?? [];
    return sendChatCompletion({
      ...common,
      text: texts[i].text,
      imageUrls,
      promptLen: p.promptTokenIds.length,
      outputLen: p.outputLen,
    });
  };

  log(`Starting initial single prompt test run (model ${model}, ${url})...`);
  const test = await send(0, prompts.length);
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
  for (let i = 0; i < prompts.length; i++) {
    if (delays[i] > 0) await sleep(delays[i] * 1000);
    pending.push(gate.run(() => send(i)));
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
    backend: isChat ? 'openai-chat' : 'openai',
  };
  const metrics = calculateMetrics(results, durationS);
  if (options.images && imageSets !== null)
    metrics.images = imageMetrics(options.images, imageSets.slice(0, prompts.length), results, texts);
  return { config, metrics, server: serverStatsBetween(before, after), results };
}

function imageMetrics(
  images: { spec: ImageSpec; perRequest: number },
  sets: readonly BenchImage[][],
  results: readonly RequestResult[],
  texts: readonly ChatPrompt[],
): ImageMetrics {
  const all = sets.flat();
  const first = all[0];
  const serverPrompt: number[] = [];
  const imageTokens: number[] = [];
  for (const [i, r] of results.entries()) {
    const reported = r.serverPromptTokens ?? null;
    if (!r.success || reported === null) continue;
    serverPrompt.push(reported);
    const textOnly = texts[i].textPromptTokens;
    if (textOnly !== null) imageTokens.push(reported - textOnly);
  }
  return {
    perRequest: images.perRequest,
    width: first.width,
    height: first.height,
    format: first.format,
    source: images.spec.kind,
    meanBytes: all.reduce((n, im) => n + im.bytes, 0) / all.length,
    imageTokens: imageTokens.length > 0 ? summarize(imageTokens) : null,
    serverPromptTokens: serverPrompt.length > 0 ? summarize(serverPrompt) : null,
  };
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

/** At least `ms`: timers take whole milliseconds, and a fractional delay rounded down would send a request early. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.ceil(ms)));
}

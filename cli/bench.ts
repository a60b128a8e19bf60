// `dawnllm bench serve`: load a running OpenAI-compatible server the way `vllm bench serve` does and print TTFT,
// TPOT, ITL, E2E latency and throughput. `dawnllm bench engine`: the engine's own per-step CPU time on the CPU
// fake runner (no server, no GPU).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchEngineLoop } from '../bench/serve/engine_loop.js';
import { formatReport, resultJson } from '../bench/serve/report.js';
import { MAX_SYNTHETIC_SIDE, parseImageSize } from '../bench/serve/image.js';
import { runServeBenchmark, type ServeBenchOptions } from '../bench/serve/run.js';
import type { Summary } from '../bench/serve/stats.js';
import { Tokenizer } from '../models/common/tokenizer.js';
import { type FlagSpec, formatHelp, parseArgs, UsageError } from './args.js';

const serveFlags: FlagSpec[] = [
  { name: 'base-url', type: 'string', help: 'server URL, e.g. http://127.0.0.1:8000 (overrides --host/--port)' },
  { name: 'host', type: 'string', default: '127.0.0.1', help: 'server host' },
  { name: 'port', type: 'number', default: 8000, help: 'server port' },
  {
    name: 'endpoint',
    type: 'string',
    help: 'endpoint path (default: /v1/completions; /v1/chat/completions with images; a chat path sends chat)',
  },
  { name: 'model', type: 'string', help: 'model name to request (default: the first of GET /v1/models)' },
  { name: 'num-prompts', type: 'number', default: 1000, help: 'number of requests' },
  { name: 'random-input-len', type: 'number', default: 1024, help: 'prompt tokens per request' },
  { name: 'random-output-len', type: 'number', default: 128, help: 'output tokens per request (max_tokens)' },
  { name: 'random-range-ratio', type: 'number', default: 0, help: 'lengths vary uniformly by ± this fraction' },
  { name: 'max-concurrency', type: 'number', help: 'most requests in flight at once (default: no limit)' },
  { name: 'request-rate', type: 'string', default: 'inf', help: 'requests per second (Poisson arrivals), or inf' },
  { name: 'seed', type: 'number', default: 0, help: 'seed for prompts and arrival times' },
  {
    name: 'ignore-eos',
    type: 'boolean',
    default: true,
    help: 'send ignore_eos so every request produces exactly its output length (vLLM defaults to off)',
  },
  { name: 'tokenizer', type: 'string', help: 'checkpoint dir whose tokenizer bounds the random prompt ids' },
  {
    name: 'random-vocab-size',
    type: 'number',
    default: 1000,
    help: 'prompt ids are drawn below this when no tokenizer is found',
  },
  {
    name: 'image',
    type: 'string',
    help: 'PNG/JPEG/WebP file every request sends as a data: URL (chat requests; the same picture each time)',
  },
  {
    name: 'image-size',
    type: 'string',
    help: 'WxH: send seeded synthetic screenshots of this size instead, distinct per request (e.g. 1280x720)',
  },
  { name: 'num-images-per-request', type: 'number', help: 'images per request with --image/--image-size (default 1)' },
  { name: 'api-key', type: 'string', help: 'bearer token (default: $OPENAI_API_KEY)' },
  { name: 'save-result', type: 'boolean', default: false, help: 'write the results as JSON' },
  { name: 'result-filename', type: 'string', help: 'JSON file for --save-result (default: a dated name)' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export async function runBenchServe(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, serveFlags);
  if (flags.help) {
    process.stdout.write(formatHelp('usage: dawnllm bench serve [options]', serveFlags));
    return 0;
  }
  const int = (name: string, min: number) => {
    const v = flags[name] as number;
    if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
    return v;
  };
  const rangeRatio = flags['random-range-ratio'] as number;
  if (!(rangeRatio >= 0 && rangeRatio < 1))
    throw new UsageError(`--random-range-ratio must be in [0, 1), got ${rangeRatio}`);
  const rateText = String(flags['request-rate']);
  const requestRate = /^(inf|infinity)$/i.test(rateText) ? Infinity : Number(rateText);
  if (!(requestRate > 0)) throw new UsageError(`--request-rate must be a positive number or inf, got "${rateText}"`);
  const maxConcurrency = flags['max-concurrency'] === undefined ? null : int('max-concurrency', 1);
  const baseUrl = (flags['base-url'] as string | undefined) ?? `http://${flags.host}:${flags.port}`;
  const model = (flags.model as string | undefined) ?? null;
  const vocab = promptVocabulary(flags.tokenizer as string | undefined, model, int('random-vocab-size', 2));
  const images = imageOption(flags);

  const { config, metrics, server } = await runServeBenchmark({
    baseUrl,
    endpoint: (flags.endpoint as string | undefined) ?? (images ? '/v1/chat/completions' : '/v1/completions'),
    images,
    model,
    numPrompts: int('num-prompts', 1),
    inputLen: int('random-input-len', 1),
    outputLen: int('random-output-len', 1),
    rangeRatio,
    maxConcurrency,
    requestRate,
    seed: int('seed', 0),
    ignoreEos: flags['ignore-eos'] as boolean,
    vocabSize: vocab.size,
    excludedIds: vocab.excluded,
    apiKey: (flags['api-key'] as string | undefined) ?? process.env.OPENAI_API_KEY,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(formatReport(config, metrics, server));
  if (flags['save-result']) {
    const file =
      (flags['result-filename'] as string | undefined) ??
      `${config.backend}-${requestRate}qps-concurrency${maxConcurrency ?? 'inf'}-${new Date().toISOString().replace(/[:.]/g, '')}.json`;
    writeFileSync(file, `${JSON.stringify(resultJson(config, metrics, server), null, 2)}\n`);
    process.stdout.write(`results written to ${file}\n`);
  }
  return metrics.completed > 0 ? 0 : 1;
}

/** --image / --image-size / --num-images-per-request → what each request carries, or null for text only. */
function imageOption(flags: Record<string, unknown>): ServeBenchOptions['images'] {
  const file = flags.image as string | undefined;
  const sizeText = flags['image-size'] as string | undefined;
  const count = flags['num-images-per-request'] as number | undefined;
  if (file !== undefined && sizeText !== undefined)
    throw new UsageError('give --image FILE or --image-size WxH, not both');
  if (file === undefined && sizeText === undefined) {
    if (count !== undefined) throw new UsageError('--num-images-per-request needs --image or --image-size');
    return null;
  }
  const perRequest = count ?? 1;
  if (!Number.isSafeInteger(perRequest) || perRequest < 1)
    throw new UsageError(`--num-images-per-request must be an integer ≥ 1, got ${perRequest}`);
  if (file !== undefined) {
    if (file === '') throw new UsageError('--image needs a file path');
    return { spec: { kind: 'file', path: file }, perRequest };
  }
  const size = parseImageSize(sizeText!);
  if (size === null)
    throw new UsageError(
      `--image-size must be WIDTHxHEIGHT with sides 1..${MAX_SYNTHETIC_SIDE}, e.g. 1280x720, got "${sizeText}"`,
    );
  return { spec: { kind: 'synthetic', ...size }, perRequest };
}

/** Prompt ids come from the tokenizer's vocabulary (special tokens excluded) when one is at hand. */
function promptVocabulary(
  tokenizerDir: string | undefined,
  model: string | null,
  fallbackSize: number,
): { size: number; excluded: ReadonlySet<number> } {
  const dir = tokenizerDir ?? (model !== null && existsSync(join(model, 'tokenizer.json')) ? model : undefined);
  if (dir === undefined) return { size: fallbackSize, excluded: new Set() };
  const tokenizer = Tokenizer.load(dir);
  return { size: tokenizer.vocabSize, excluded: tokenizer.specialIds };
}

const engineFlags: FlagSpec[] = [
  { name: 'num-prompts', type: 'number', default: 64, help: 'requests, all sent at once' },
  { name: 'input-len', type: 'number', default: 1024, help: 'prompt tokens per request' },
  { name: 'output-len', type: 'number', default: 128, help: 'output tokens per request' },
  { name: 'max-num-seqs', type: 'number', default: 64, help: 'as in serve' },
  { name: 'max-num-batched-tokens', type: 'number', default: 8192, help: 'as in serve' },
  { name: 'tokenizer', type: 'string', help: 'detokenize with this checkpoint tokenizer (else token-id text)' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export async function runBenchEngine(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, engineFlags);
  if (flags.help) {
    process.stdout.write(formatHelp('usage: dawnllm bench engine [options]', engineFlags));
    return 0;
  }
  const tokenizerDir = flags.tokenizer as string | undefined;
  const tokenizer = tokenizerDir === undefined ? undefined : Tokenizer.load(tokenizerDir);
  const result = await benchEngineLoop({
    numRequests: flags['num-prompts'] as number,
    inputLen: flags['input-len'] as number,
    outputLen: flags['output-len'] as number,
    maxNumSeqs: flags['max-num-seqs'] as number,
    maxNumBatchedTokens: flags['max-num-batched-tokens'] as number,
    vocabSize: tokenizer?.vocabSize,
    tokenizer,
  });
  const row = (label: string, s: Summary) =>
    `${label.padEnd(28)} mean ${s.mean.toFixed(3)}  median ${s.median.toFixed(3)}  p99 ${s.p99.toFixed(3)}  max ${s.max.toFixed(3)}  (${s.count} steps)`;
  process.stdout.write(
    [
      `engine loop on the CPU fake runner: ${flags['num-prompts']} requests × (${flags['input-len']} in, ${flags['output-len']} out)`,
      `${result.numSteps} steps, ${result.outputTokens} output tokens in ${result.wallMs.toFixed(0)} ms`,
      row('engine CPU per step (ms)', result.stepCpuMs),
      row('  decode-only steps (ms)', result.decodeStepCpuMs),
      `runner idle between steps, mean ${result.runnerIdleMeanMs.toFixed(3)} ms (engine + stream consumers + event loop)`,
      '',
    ].join('\n'),
  );
  return 0;
}

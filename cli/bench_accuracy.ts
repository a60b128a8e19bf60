// `dawnllm bench accuracy`: a baseline and a candidate checkpoint of one model (e.g. BF16 vs NVFP4) scored on the
// same tasks — in-process through the real engine (--baseline DIR --candidate DIR) or against running servers
// (--baseline-url / --candidate-url, or --url A,B) — with the PR-style table, bootstrap intervals, drift, a JSON and
// a Markdown report, and --max-drop for CI. docs/ACCURACY.md has the details.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../bench/accuracy/backend.js';
import { EngineBackend } from '../bench/accuracy/engine_backend.js';
import type { McMode } from '../bench/accuracy/evaluate.js';
import { parseExtractRule } from '../bench/accuracy/extract.js';
import { HttpBackend } from '../bench/accuracy/http_backend.js';
import { failingDrops, formatMarkdown, formatText } from '../bench/accuracy/report.js';
import { type AccuracyConfig, runAccuracyBenchmark } from '../bench/accuracy/run.js';
import { loadTaskFile } from '../bench/accuracy/tasks.js';
import { bundledTasksDir, defaultModelDir } from '../models/default_model.js';
import type { RunnerFactory } from '../server/runner_factory.js';
import { type FlagSpec, formatHelp, parseArgs, UsageError } from './args.js';

const flagSpecs: FlagSpec[] = [
  { name: 'baseline', type: 'string', help: 'baseline checkpoint dir, run in-process (e.g. the BF16 original)' },
  { name: 'candidate', type: 'string', help: 'candidate checkpoint dir, run in-process (default: the bundled model)' },
  { name: 'baseline-url', type: 'string', help: 'baseline server URL instead of --baseline' },
  { name: 'candidate-url', type: 'string', help: 'candidate server URL instead of --candidate' },
  { name: 'url', type: 'string', help: 'BASELINE_URL,CANDIDATE_URL (both servers at once)' },
  { name: 'model', type: 'string', help: 'model name sent to servers (default: the first of GET /v1/models)' },
  { name: 'api-key', type: 'string', help: 'bearer token for servers (default: $OPENAI_API_KEY)' },
  {
    name: 'tasks',
    type: 'string',
    help: 'comma-separated JSONL task files (default: the bundled model’s arith-gen and arith-mc)',
  },
  { name: 'limit', type: 'number', help: 'score N items per task, drawn with --seed (default: all)' },
  { name: 'seed', type: 'number', default: 1234, help: 'seed for --limit sampling and the bootstrap' },
  {
    name: 'extract',
    type: 'string',
    help: 'exact | last-number | regex:<pattern> (default: exact; GSM8K: last-number)',
  },
  { name: 'mc-mode', type: 'string', default: 'loglik,letter', help: 'multiple-choice scoring: loglik and/or letter' },
  { name: 'max-tokens', type: 'number', default: 32, help: 'generation limit for generative tasks' },
  { name: 'mc-max-tokens', type: 'number', default: 4, help: 'generation limit for --mc-mode letter' },
  { name: 'concurrency', type: 'number', default: 16, help: 'requests in flight per checkpoint' },
  {
    name: 'warmup',
    type: 'number',
    default: 0,
    help: 'items per task scored untimed first (shader compiles then stay out of the wall clock)',
  },
  { name: 'ppl', type: 'string', help: 'a text file to score for perplexity' },
  { name: 'ppl-chunk', type: 'number', default: 256, help: 'tokens per perplexity window' },
  { name: 'drift-limit', type: 'number', default: 200, help: 'sampled items whose prompt + answer tokens feed drift' },
  { name: 'drift-top-k', type: 'number', default: 20, help: 'top logprobs per position for drift (≤ 20)' },
  { name: 'bootstrap', type: 'number', default: 1000, help: 'bootstrap resamples' },
  { name: 'ci-level', type: 'number', default: 0.95, help: 'confidence level of the intervals' },
  { name: 'max-drop', type: 'number', help: 'exit 1 when any task’s candidate loses more than this many points' },
  { name: 'output', type: 'string', help: 'report path prefix: writes PREFIX.json and PREFIX.md (default: dated)' },
  { name: 'max-num-seqs', type: 'number', default: 16, help: 'in-process engine: as in serve' },
  { name: 'max-num-batched-tokens', type: 'number', default: 2048, help: 'in-process engine: as in serve' },
  { name: 'kv-cache-dtype', type: 'string', default: 'auto', help: 'in-process engine: as in serve' },
  { name: 'device', type: 'string', help: 'in-process engine: adapter name substring' },
  { name: 'quiet', type: 'boolean', default: false, help: 'no progress output' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export interface BenchAccuracyDeps {
  /** The in-process model runner (default: the GPU runner of the checkpoint's architecture). */
  runnerFactory?: RunnerFactory;
  stdout?: (text: string) => void;
  progress?: NodeJS.WriteStream | null;
}

export async function runBenchAccuracy(argv: string[], deps: BenchAccuracyDeps = {}): Promise<number> {
  const { flags } = parseArgs(argv, flagSpecs);
  const print = deps.stdout ?? ((text: string) => process.stdout.write(text));
  if (flags.help) {
    print(
      formatHelp(
        'usage: dawnllm bench accuracy --baseline DIR|--baseline-url URL [--candidate …] [options]',
        flagSpecs,
      ),
    );
    return 0;
  }
  const str = (name: string) => flags[name] as string | undefined;
  const int = (name: string, min: number): number => {
    const v = flags[name] as number;
    if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
    return v;
  };
  const urls = str('url')?.split(',');
  if (urls !== undefined && urls.length !== 2)
    throw new UsageError(`--url takes BASELINE_URL,CANDIDATE_URL, got "${str('url')}"`);
  const apiKey = str('api-key') ?? process.env.OPENAI_API_KEY;
  const engineOptions = {
    runnerFactory: deps.runnerFactory,
    maxNumSeqs: int('max-num-seqs', 1),
    maxNumBatchedTokens: int('max-num-batched-tokens', 1),
    kvCacheDtype: str('kv-cache-dtype'),
    device: str('device') ?? null,
  };
  const opener = (role: 'baseline' | 'candidate', dir: string | undefined, url: string | undefined) => {
    if (dir !== undefined && url !== undefined) throw new UsageError(`give --${role} or --${role}-url, not both`);
    if (url !== undefined) return () => HttpBackend.connect({ url, model: str('model'), apiKey }) as Promise<Backend>;
    const modelDir = dir ?? (role === 'candidate' ? defaultModelDir() : undefined);
    if (modelDir === undefined) throw new UsageError(`--${role} DIR or --${role}-url URL is required`);
    return () => EngineBackend.load({ ...engineOptions, modelDir }) as Promise<Backend>;
  };
  const openBaseline = opener('baseline', str('baseline'), str('baseline-url') ?? urls?.[0]);
  const openCandidate = opener('candidate', str('candidate'), str('candidate-url') ?? urls?.[1]);

  const taskPaths =
    str('tasks')?.split(',').filter(Boolean) ??
    ['arith-gen.jsonl', 'arith-mc.jsonl'].map((f) => join(bundledTasksDir(), f));
  const mcModes = (str('mc-mode') ?? '').split(',').filter(Boolean);
  for (const m of mcModes)
    if (m !== 'loglik' && m !== 'letter') throw new UsageError(`--mc-mode takes loglik and/or letter, got "${m}"`);
  const level = flags['ci-level'] as number;
  if (!(level > 0 && level < 1)) throw new UsageError(`--ci-level must be in (0, 1), got ${level}`);
  const driftTopK = int('drift-top-k', 1);
  if (driftTopK > 20) throw new UsageError(`--drift-top-k must be ≤ 20 (the API's logprobs limit), got ${driftTopK}`);
  const config: AccuracyConfig = {
    tasks: taskPaths.map(loadTaskFile),
    limit: flags.limit === undefined ? null : int('limit', 1),
    seed: int('seed', 0),
    extract: str('extract') === undefined ? null : parseExtractRule(str('extract')!),
    mcModes: mcModes as McMode[],
    genMaxTokens: int('max-tokens', 1),
    mcMaxTokens: int('mc-max-tokens', 1),
    concurrency: int('concurrency', 1),
    warmup: int('warmup', 0),
    pplFile: str('ppl') ?? null,
    pplChunkTokens: int('ppl-chunk', 2),
    driftLimit: int('drift-limit', 0),
    driftTopK,
    resamples: int('bootstrap', 1),
    level,
    progress: flags.quiet ? null : deps.progress === undefined ? process.stderr : deps.progress,
  };
  const report = await runAccuracyBenchmark(
    config,
    { role: 'baseline', open: openBaseline },
    { role: 'candidate', open: openCandidate },
  );
  print(formatText(report));
  const prefix = str('output') ?? `accuracy-${new Date().toISOString().replace(/[:.]/g, '')}`;
  writeFileSync(`${prefix}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${prefix}.md`, formatMarkdown(report));
  print(`reports written to ${prefix}.json and ${prefix}.md\n`);
  const maxDrop = flags['max-drop'] as number | undefined;
  if (maxDrop === undefined) return 0;
  const failing = failingDrops(report, maxDrop);
  for (const e of failing)
    print(`FAIL ${e.name}: candidate lost ${(-e.delta * 100).toFixed(1)} pp, more than --max-drop ${maxDrop}\n`);
  return failing.length > 0 ? 1 : 0;
}

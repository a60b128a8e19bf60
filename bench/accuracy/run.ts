// The benchmark: each checkpoint in turn (baseline first) is opened, scored on every task, asked for the prompt
// logprobs of the drift sequences and the perplexity text, and closed before the next one opens (one model in
// memory at a time). Then both are compared item by item.
import { readFileSync } from 'node:fs';
import type { Backend, PositionLogprobs } from './backend.js';
import { driftStats, perplexity } from './drift.js';
import { type ItemResult, mapPool, type McMode, scoreGen, scoreMcLetter, scoreMcLoglik } from './evaluate.js';
import { type ExtractRule, describeRule } from './extract.js';
import { Progress } from './progress.js';
import { type AccuracyReport, compareRuns, type EvalRun } from './report.js';
import { sampleIndices } from './stats.js';
import type { TaskFile, TaskItem } from './tasks.js';

export interface AccuracyConfig {
  readonly tasks: readonly TaskFile[];
  readonly limit: number | null;
  readonly seed: number;
  /** null: exact, or last-number for GSM8K-style answers. */
  readonly extract: ExtractRule | null;
  readonly mcModes: readonly McMode[];
  readonly genMaxTokens: number;
  readonly mcMaxTokens: number;
  readonly concurrency: number;
  /** Items per task scored untimed before timing starts (pipeline compiles and caches land there, not in Δ wall). */
  readonly warmup: number;
  /** A text file scored for perplexity (in chunks), or null. */
  readonly pplFile: string | null;
  readonly pplChunkTokens: number;
  /** Items (from the sampled tasks) whose prompt + gold answer are compared token by token. */
  readonly driftLimit: number;
  readonly driftTopK: number;
  readonly resamples: number;
  readonly level: number;
  /** Progress output; null: silent (tests). */
  readonly progress: NodeJS.WriteStream | null;
}

export interface CheckpointRun {
  readonly label: string;
  readonly openS: number;
  readonly evals: EvalRun[];
  readonly driftRows: PositionLogprobs[][];
  readonly pplRows: PositionLogprobs[][];
}

export interface Checkpoint {
  readonly role: 'baseline' | 'candidate';
  readonly open: () => Promise<Backend>;
}

export async function runAccuracyBenchmark(
  config: AccuracyConfig,
  baseline: Checkpoint,
  candidate: Checkpoint,
): Promise<AccuracyReport> {
  const sampled = config.tasks.map((t) => ({
    file: t,
    items: sampleIndices(t.items.length, config.limit, config.seed).map((i) => t.items[i]),
  }));
  const pplText = config.pplFile === null ? null : readFileSync(config.pplFile, 'utf8');
  const runs: CheckpointRun[] = [];
  for (const cp of [baseline, candidate]) runs.push(await runCheckpoint(config, cp, sampled, pplText));
  const [b, c] = runs;
  return compareRuns(config, b, c, {
    drift: b.driftRows.length ? driftStats(b.driftRows, c.driftRows) : null,
    perplexity: pplText === null ? null : { baseline: perplexity(b.pplRows), candidate: perplexity(c.pplRows) },
  });
}

async function runCheckpoint(
  config: AccuracyConfig,
  cp: Checkpoint,
  sampled: { file: TaskFile; items: TaskItem[] }[],
  pplText: string | null,
): Promise<CheckpointRun> {
  const t0 = performance.now();
  const backend = await cp.open();
  const openS = (performance.now() - t0) / 1000;
  try {
    const evals: EvalRun[] = [];
    const phases = sampled.flatMap(({ file, items }) =>
      (file.kind === 'gen' ? [null] : [...config.mcModes]).map((mode) => ({ file, items, mode })),
    );
    const score = (items: readonly TaskItem[], mode: McMode | null, rule: ExtractRule, onDone?: () => void) =>
      mapPool<TaskItem, ItemResult>(
        items,
        config.concurrency,
        (item) => {
          if (item.kind === 'gen') return scoreGen(backend, item, rule, config.genMaxTokens);
          return mode === 'letter' ? scoreMcLetter(backend, item, config.mcMaxTokens) : scoreMcLoglik(backend, item);
        },
        onDone,
      );
    if (config.warmup > 0) {
      const progress = new Progress(`${cp.role} warm-up`, phases.length, config.progress);
      for (const { items, mode } of phases) {
        await score(items.slice(0, config.warmup), mode, config.extract ?? defaultRule(items));
        progress.tick();
      }
      progress.finish();
    }
    for (const { file, items, mode } of phases) {
      const name = mode === null ? file.name : `${file.name} (${mode})`;
      const rule = config.extract ?? defaultRule(items);
      const metric = mode === null ? `exact match, extract ${describeRule(rule)}` : mcMetric(mode);
      const progress = new Progress(`${cp.role} ${name}`, items.length, config.progress);
      const start = performance.now();
      const results = await score(items, mode, rule, () => progress.tick());
      progress.finish();
      evals.push({ name, metric, results, wallS: (performance.now() - start) / 1000 });
    }
    const driftRows = await scoreDrift(config, backend, sampled, cp.role);
    const pplRows = pplText === null ? [] : await scorePerplexity(config, backend, pplText, cp.role);
    return { label: backend.label, openS, evals, driftRows, pplRows };
  } finally {
    await backend.close();
  }
}

function defaultRule(items: readonly TaskItem[]): ExtractRule {
  return items.some((it) => it.kind === 'gen' && it.isGsm8k) ? { kind: 'last-number' } : { kind: 'exact' };
}

function mcMetric(mode: McMode): string {
  return mode === 'loglik' ? 'accuracy, argmax of choice-letter logprob' : 'accuracy, generated letter';
}

/** Chat prompt + gold answer (gen) or + the right letter (mc), for the first driftLimit sampled items. */
async function scoreDrift(
  config: AccuracyConfig,
  backend: Backend,
  sampled: { items: TaskItem[] }[],
  role: string,
): Promise<PositionLogprobs[][]> {
  const items = sampled.flatMap((s) => s.items).slice(0, config.driftLimit);
  if (items.length === 0) return [];
  const progress = new Progress(`${role} drift`, items.length, config.progress);
  const rows = await mapPool(
    items,
    config.concurrency,
    async (item) => {
      const answer = item.kind === 'gen' ? item.gold : item.letters[item.answerIndex];
      const ids = [...(await backend.chatPromptIds(item.prompt)), ...(await backend.encode(answer))];
      return backend.promptLogprobs(ids, config.driftTopK);
    },
    () => progress.tick(),
  );
  progress.finish();
  return rows;
}

async function scorePerplexity(
  config: AccuracyConfig,
  backend: Backend,
  text: string,
  role: string,
): Promise<PositionLogprobs[][]> {
  const ids = await backend.encode(text);
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length; i += config.pplChunkTokens) {
    const chunk = ids.slice(i, i + config.pplChunkTokens);
    if (chunk.length >= 2) chunks.push(chunk);
  }
  const progress = new Progress(`${role} perplexity`, chunks.length, config.progress);
  const rows = await mapPool(
    chunks,
    config.concurrency,
    (chunk) => backend.promptLogprobs(chunk, config.driftTopK),
    () => progress.tick(),
  );
  progress.finish();
  return rows;
}

// Comparison of the two checkpoints and its outputs: the PR-style table (task, n, baseline %, candidate %, Δ pp,
// candidate/baseline wall clock) with paired-bootstrap intervals, per-subtask rows, multiple-choice items whose
// picks differ (with each side's top-two gap, to tell noise from damage), drift and perplexity; as text, Markdown
// and JSON.
import type { DriftStats } from './drift.js';
import type { ItemResult, McResult } from './evaluate.js';
import type { AccuracyConfig, CheckpointRun } from './run.js';
import { type Interval, mean, pairedBootstrap } from './stats.js';

export interface EvalRun {
  readonly name: string;
  readonly metric: string;
  readonly results: readonly ItemResult[];
  readonly wallS: number;
}

export interface Score {
  readonly n: number;
  readonly baseline: number;
  readonly candidate: number;
  /** candidate − baseline, as a fraction. */
  readonly delta: number;
  readonly baselineCi: Interval;
  readonly candidateCi: Interval;
  readonly deltaCi: Interval;
}

export interface McDisagreement {
  readonly index: number;
  readonly answer: number;
  readonly baselinePick: number;
  readonly candidatePick: number;
  readonly baselineGap: number | null;
  readonly candidateGap: number | null;
}

export interface EvalComparison extends Score {
  readonly name: string;
  readonly metric: string;
  readonly baselineWallS: number;
  readonly candidateWallS: number;
  readonly subtasks: readonly (Score & { name: string })[];
  /** Items the two checkpoints answer differently (gen: right vs wrong; mc: different picks). */
  readonly numDiffering: number;
  readonly mcDisagreements: readonly McDisagreement[];
}

export interface AccuracyReport {
  readonly baseline: { label: string; openS: number };
  readonly candidate: { label: string; openS: number };
  readonly settings: {
    limit: number | null;
    seed: number;
    resamples: number;
    level: number;
    driftTopK: number;
  };
  readonly evals: readonly EvalComparison[];
  readonly drift: DriftStats | null;
  readonly perplexity: { baseline: { tokens: number; ppl: number }; candidate: { tokens: number; ppl: number } } | null;
  /** Per item, both sides' outputs or picks (for diffing). */
  readonly items: Record<string, { baseline: readonly ItemResult[]; candidate: readonly ItemResult[] }>;
}

export function compareRuns(
  config: Pick<AccuracyConfig, 'limit' | 'seed' | 'resamples' | 'level' | 'driftTopK'>,
  b: CheckpointRun,
  c: CheckpointRun,
  extra: Pick<AccuracyReport, 'drift' | 'perplexity'>,
): AccuracyReport {
  const opts = { resamples: config.resamples, level: config.level, seed: config.seed };
  const items: AccuracyReport['items'] = {};
  const evals = b.evals.map((be, k): EvalComparison => {
    const ce = c.evals[k];
    items[be.name] = { baseline: be.results, candidate: ce.results };
    const tasks = [...new Set(be.results.map((r) => r.task))];
    const subtasks =
      tasks.length < 2
        ? []
        : tasks.map((task) => {
            const pick = (rs: readonly ItemResult[]) => rs.filter((r) => r.task === task);
            return { name: task, ...score(pick(be.results), pick(ce.results), opts) };
          });
    const mcDisagreements: McDisagreement[] = [];
    let numDiffering = 0;
    be.results.forEach((r, i) => {
      const o = ce.results[i];
      if ('pick' in r && 'pick' in o) {
        if (r.pick === o.pick) return;
        numDiffering++;
        mcDisagreements.push({
          index: i,
          answer: r.answer,
          baselinePick: r.pick,
          candidatePick: (o as McResult).pick,
          baselineGap: r.gap,
          candidateGap: (o as McResult).gap,
        });
      } else if (r.correct !== o.correct) numDiffering++;
    });
    return {
      name: be.name,
      metric: be.metric,
      ...score(be.results, ce.results, opts),
      baselineWallS: be.wallS,
      candidateWallS: ce.wallS,
      subtasks,
      numDiffering,
      mcDisagreements,
    };
  });
  return {
    baseline: { label: b.label, openS: b.openS },
    candidate: { label: c.label, openS: c.openS },
    settings: {
      limit: config.limit,
      seed: config.seed,
      resamples: config.resamples,
      level: config.level,
      driftTopK: config.driftTopK,
    },
    evals,
    ...extra,
    items,
  };
}

function score(
  b: readonly ItemResult[],
  c: readonly ItemResult[],
  opts: { resamples: number; level: number; seed: number },
): Score {
  const bf = b.map((r) => r.correct);
  const cf = c.map((r) => r.correct);
  const ci = pairedBootstrap(bf, cf, opts);
  const baseline = mean(bf);
  const candidate = mean(cf);
  return {
    n: bf.length,
    baseline,
    candidate,
    delta: candidate - baseline,
    baselineCi: ci.baseline,
    candidateCi: ci.candidate,
    deltaCi: ci.delta,
  };
}

/** Evaluations whose candidate lost more than maxDropPp percentage points. */
export function failingDrops(report: AccuracyReport, maxDropPp: number): EvalComparison[] {
  return report.evals.filter((e) => -e.delta * 100 > maxDropPp + 1e-9);
}

const pct = (x: number) => (Number.isFinite(x) ? (x * 100).toFixed(1) : '—');
const pp = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}` : '—');
const ci = (i: Interval) => `[${pct(i.lo)}, ${pct(i.hi)}]`;
const ciPp = (i: Interval) => `[${pp(i.lo)}, ${pp(i.hi)}]`;

function rowsOf(report: AccuracyReport): string[][] {
  const rows: string[][] = [];
  for (const e of report.evals) {
    const ratio = e.baselineWallS > 0 ? `${(e.candidateWallS / e.baselineWallS).toFixed(2)}×` : '—';
    rows.push([
      e.name,
      String(e.n),
      `${pct(e.baseline)} ${ci(e.baselineCi)}`,
      `${pct(e.candidate)} ${ci(e.candidateCi)}`,
      `${pp(e.delta)} ${ciPp(e.deltaCi)}`,
      `${ratio} (${e.baselineWallS.toFixed(1)} s → ${e.candidateWallS.toFixed(1)} s)`,
    ]);
    for (const s of e.subtasks)
      rows.push([
        `  ${s.name}`,
        String(s.n),
        pct(s.baseline),
        pct(s.candidate),
        `${pp(s.delta)} ${ciPp(s.deltaCi)}`,
        '',
      ]);
  }
  return rows;
}

const HEADER = ['task', 'n', 'baseline %', 'candidate %', 'Δ pp', 'candidate/baseline wall clock'];

/** The PR-style table as aligned plain text. */
export function formatTable(report: AccuracyReport): string {
  const rows = [HEADER, ...rowsOf(report)];
  const widths = HEADER.map((_, j) => Math.max(...rows.map((r) => [...r[j]].length)));
  const line = (r: string[]) =>
    r
      .map((cell, j) => cell.padEnd(widths[j]))
      .join('  ')
      .trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  return out.join('\n');
}

function driftLines(report: AccuracyReport): string[] {
  const lines: string[] = [];
  const d = report.drift;
  if (d !== null)
    lines.push(
      `drift over ${d.positions} token positions (top-${report.settings.driftTopK}): mean KL ${d.meanKl.toExponential(3)} nats, ` +
        `max KL ${d.maxKl.toExponential(3)}, top-1 agreement ${pct(d.top1Agreement)} %, max |Δlogprob| ${d.maxAbsDeltaLogprob.toFixed(4)}`,
    );
  const p = report.perplexity;
  if (p !== null)
    lines.push(
      `perplexity over ${p.baseline.tokens} tokens: baseline ${p.baseline.ppl.toFixed(4)}, candidate ${p.candidate.ppl.toFixed(4)}`,
    );
  return lines;
}

function disagreementLines(report: AccuracyReport, max = 20): string[] {
  const lines: string[] = [];
  const gap = (g: number | null) => (g === null ? '—' : g.toExponential(2));
  for (const e of report.evals) {
    if (e.mcDisagreements.length === 0) continue;
    lines.push(`${e.name}: ${e.mcDisagreements.length} of ${e.n} picks differ (gap = best − second logprob):`);
    for (const m of e.mcDisagreements.slice(0, max))
      lines.push(
        `  item ${m.index}: answer ${m.answer}, baseline ${m.baselinePick} (gap ${gap(m.baselineGap)}), candidate ${m.candidatePick} (gap ${gap(m.candidateGap)})`,
      );
    if (e.mcDisagreements.length > max) lines.push(`  … ${e.mcDisagreements.length - max} more in the JSON report`);
  }
  return lines;
}

export function formatText(report: AccuracyReport): string {
  const head = [
    `baseline:  ${report.baseline.label} (opened in ${report.baseline.openS.toFixed(1)} s)`,
    `candidate: ${report.candidate.label} (opened in ${report.candidate.openS.toFixed(1)} s)`,
    `intervals: ${pct(report.settings.level)} % paired bootstrap, ${report.settings.resamples} resamples, seed ${report.settings.seed}`,
    '',
  ];
  return [...head, formatTable(report), '', ...driftLines(report), ...disagreementLines(report)].join('\n') + '\n';
}

export function formatMarkdown(report: AccuracyReport): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const table = [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, j) => (j === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rowsOf(report).map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  const metrics = report.evals.map((e) => `- **${e.name}**: ${e.metric}; ${e.numDiffering} items differ`);
  return [
    '# Accuracy: baseline vs candidate',
    '',
    `- baseline: \`${report.baseline.label}\``,
    `- candidate: \`${report.candidate.label}\``,
    `- limit ${report.settings.limit ?? 'none'}, seed ${report.settings.seed}; ${pct(report.settings.level)} % paired bootstrap intervals (${report.settings.resamples} resamples)`,
    '',
    ...table,
    '',
    ...metrics,
    '',
    ...driftLines(report).map((l) => `- ${l}`),
    '',
    ...(disagreementLines(report).length ? ['```', ...disagreementLines(report, 200), '```', ''] : []),
  ].join('\n');
}

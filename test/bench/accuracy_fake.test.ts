// End to end on the CPU fake runner under the real engine, with the bundled model's tokenizer and chat template:
// a scripted "oracle" answers arithmetic right; the candidate's script gets every "times" question wrong, so the
// expected scores, Δ and --max-drop exit code are known exactly.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AccuracyReport } from '../../bench/accuracy/report.js';
import { loadTaskFile } from '../../bench/accuracy/tasks.js';
import { runBenchAccuracy } from '../../cli/bench_accuracy.js';
import { bundledTasksDir } from '../../models/default_model.js';
import { factory, modelDir } from './accuracy_oracle.js';
import type { RunnerFactory } from '../../server/runner_factory.js';
import { sampleIndices } from '../../bench/accuracy/stats.js';

const tmp = mkdtempSync(join(tmpdir(), 'dawn-acc-'));
afterAll(() => rmSync(tmp, { recursive: true }));

describe('bench accuracy on the fake runner', () => {
  it('scores both checkpoints, reports Δ with intervals and fails --max-drop', async () => {
    // The same module serves both roles; the candidate is told apart by its directory.
    const both: RunnerFactory = (o) => factory(o.modelDir.endsWith('candidate'))(o);
    const candidateDir = join(tmp, 'candidate');
    const { symlinkSync } = await import('node:fs');
    symlinkSync(modelDir, candidateDir);
    let out = '';
    const prefix = join(tmp, 'report');
    const code = await runBenchAccuracy(
      [
        '--baseline',
        modelDir,
        '--candidate',
        candidateDir,
        '--limit',
        '40',
        '--seed',
        '5',
        '--max-drop',
        '5',
        '--output',
        prefix,
        '--drift-limit',
        '10',
      ],
      { runnerFactory: both, stdout: (t) => (out += t), progress: null },
    );
    const report = JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as AccuracyReport;
    const gen = loadTaskFile(join(bundledTasksDir(), 'arith-gen.jsonl'));
    const picked = sampleIndices(gen.items.length, 40, 5).map((i) => gen.items[i]);
    const numMul = picked.filter((it) => it.task === 'mul').length;
    expect(numMul).toBeGreaterThan(0);

    const [g, mcLoglik, mcLetter] = report.evals;
    expect(g).toMatchObject({ name: 'arith-gen', n: 40, baseline: 1, candidate: (40 - numMul) / 40 });
    expect(g.delta).toBeCloseTo(-numMul / 40, 12);
    expect(g.deltaCi.hi).toBeLessThanOrEqual(0);
    expect(g.subtasks.find((s) => s.name === 'mul')).toMatchObject({ baseline: 1, candidate: 0 });
    expect(g.subtasks.find((s) => s.name === 'add2')).toMatchObject({ baseline: 1, candidate: 1 });
    // Letter answers from the oracle: right for both but on "times" items for the candidate.
    expect(mcLetter.name).toBe('arith-mc (letter)');
    expect(mcLetter.baseline).toBe(1);
    // Log-likelihood picks come from the fake runner's prompt logprobs (no script): equal on both sides.
    expect(mcLoglik.name).toBe('arith-mc (loglik)');
    expect(mcLoglik.delta).toBe(0);
    expect(mcLoglik.mcDisagreements).toEqual([]);
    // Same fake logprobs on both sides: no drift.
    expect(report.drift).toMatchObject({ meanKl: 0, top1Agreement: 1, maxAbsDeltaLogprob: 0 });
    expect(report.drift!.positions).toBeGreaterThan(10 * 20);
    // The table, the Markdown and the exit code.
    expect(out).toMatch(/task\s+n\s+baseline %\s+candidate %\s+Δ pp\s+candidate\/baseline wall clock/);
    expect(out).toMatch(
      new RegExp(`arith-gen\\s+40\\s+100\\.0 \\[100\\.0, 100\\.0\\]\\s+${((100 * (40 - numMul)) / 40).toFixed(1)}`),
    );
    expect(out).toMatch(/FAIL arith-gen: candidate lost/);
    expect(readFileSync(`${prefix}.md`, 'utf8')).toMatch(/\| arith-gen \| 40 \| 100\.0/);
    expect(code).toBe(1);
  });

  it('passes --max-drop when the checkpoints agree, and scores every item without --limit', async () => {
    let out = '';
    const code = await runBenchAccuracy(
      [
        '--baseline',
        modelDir,
        '--tasks',
        join(bundledTasksDir(), 'arith-mc.jsonl'),
        '--mc-mode',
        'letter',
        '--warmup',
        '3',
        '--max-drop',
        '0',
        '--output',
        join(tmp, 'same'),
        '--drift-limit',
        '0',
      ],
      { runnerFactory: factory(false), stdout: (t) => (out += t), progress: null },
    );
    const report = JSON.parse(readFileSync(join(tmp, 'same.json'), 'utf8')) as AccuracyReport;
    expect(report.evals.map((e) => [e.name, e.n, e.baseline, e.candidate])).toEqual([['arith-mc (letter)', 200, 1, 1]]);
    expect(report.drift).toBeNull();
    expect(out).not.toMatch(/FAIL/);
    expect(code).toBe(0);
  });

  it('refuses bad flags with usage errors', async () => {
    await expect(runBenchAccuracy(['--candidate', modelDir])).rejects.toThrow(/--baseline DIR or --baseline-url/);
    await expect(runBenchAccuracy(['--baseline', 'x', '--mc-mode', 'vote'])).rejects.toThrow(/loglik and\/or letter/);
    await expect(runBenchAccuracy(['--url', 'http://a'])).rejects.toThrow(/BASELINE_URL,CANDIDATE_URL/);
  });
});

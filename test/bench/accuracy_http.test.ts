// --url mode against two real servers (Fastify around the fake runner with the oracle script): the scores must be
// exactly those of the in-process run of the same checkpoints, since both paths send the same token ids.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AccuracyReport } from '../../bench/accuracy/report.js';
import { runBenchAccuracy } from '../../cli/bench_accuracy.js';
import type { RunnerFactory } from '../../server/runner_factory.js';
import { startTestServer, type TestServer } from '../server/helpers.js';
import { factory, modelDir, oracle } from './accuracy_oracle.js';

const tmp = mkdtempSync(join(tmpdir(), 'dawn-acc-http-'));
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(tmp, { recursive: true });
});

const common = ['--limit', '12', '--seed', '9', '--drift-limit', '4', '--concurrency', '4'];

async function run(argv: string[], runnerFactory?: RunnerFactory): Promise<AccuracyReport> {
  const prefix = join(tmp, `r${Math.random().toString(36).slice(2)}`);
  await runBenchAccuracy([...argv, ...common, '--output', prefix], { runnerFactory, stdout: () => {}, progress: null });
  return JSON.parse(readFileSync(`${prefix}.json`, 'utf8')) as AccuracyReport;
}

describe('bench accuracy --url', () => {
  it('scores two servers exactly as the in-process engine scores the same checkpoints', async () => {
    for (const wrong of [false, true])
      servers.push(await startTestServer({ runner: { script: oracle(wrong), maxModelLen: 512, numKvBlocks: 128 } }));
    const urls = servers.map((s) => s.baseURL.replace(/\/v1$/, ''));
    const viaHttp = await run(['--url', urls.join(',')]);
    let calls = 0;
    const both: RunnerFactory = (o) => factory(o.modelDir.endsWith('#candidate'))(o);
    const inProcess = await run(['--baseline', modelDir, '--candidate', modelDir], async (o) => {
      // The two in-process loads of one directory: the first is the baseline, the second the candidate.
      calls++;
      return both({ ...o, modelDir: calls === 2 ? `${o.modelDir}#candidate` : o.modelDir });
    });
    const summary = (r: AccuracyReport) =>
      r.evals.map((e) => ({ name: e.name, n: e.n, b: e.baseline, c: e.candidate, items: r.items[e.name] }));
    expect(summary(viaHttp)).toEqual(summary(inProcess));
    expect(viaHttp.evals[0].delta).toBeLessThan(0); // the candidate server gets "times" wrong
    expect(viaHttp.drift).toMatchObject({ meanKl: 0, top1Agreement: 1 });
    expect(viaHttp.drift!.positions).toBe(inProcess.drift!.positions);
    expect(viaHttp.baseline.label).toMatch(/tiny-qwen3-vl-moe/);
  });
});

// `dawnllm bench serve` against a local stub server: request shape, the concurrency gate, Poisson arrivals, the
// metric arithmetic (vLLM's), SSE split across packets, failures, the server-side step CPU time, the JSON result.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runBenchServe } from '../../cli/bench.js';
import { arrivalDelaysS, randomDataset } from '../../bench/serve/dataset.js';
import { calculateMetrics } from '../../bench/serve/report.js';
import type { RequestResult } from '../../bench/serve/request.js';
import { runServeBenchmark, type ServeBenchOptions } from '../../bench/serve/run.js';
import { SseParser } from '../../bench/serve/sse.js';
import { parsePrometheus } from '../../bench/serve/server_metrics.js';
import { percentile } from '../../bench/serve/stats.js';
import { startStub, type StubServer } from './stub_server.js';

let stub: StubServer | null = null;
afterEach(async () => {
  await stub?.close();
  stub = null;
  vi.restoreAllMocks();
});

const base = (baseUrl: string): ServeBenchOptions => ({
  baseUrl,
  endpoint: '/v1/completions',
  model: null,
  numPrompts: 12,
  inputLen: 8,
  outputLen: 5,
  rangeRatio: 0,
  maxConcurrency: null,
  requestRate: Infinity,
  seed: 0,
  ignoreEos: true,
  vocabSize: 1000,
});

describe('bench serve client', () => {
  it('sends streaming token-id prompts and keeps to --max-concurrency', async () => {
    stub = await startStub({ tokenDelayMs: 3 });
    const { metrics, server, config } = await runServeBenchmark({ ...base(stub.baseUrl), maxConcurrency: 3 });
    expect(config.model).toBe('stub-model');
    expect(stub.bodies).toHaveLength(13); // the test request, then 12
    for (const body of stub.bodies) {
      expect(body).toMatchObject({
        model: 'stub-model',
        max_tokens: 5,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
      });
      expect(body.prompt).toHaveLength(8);
    }
    expect(stub.maxInFlight).toBeLessThanOrEqual(3);
    expect(stub.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatchObject({ completed: 12, failed: 0, totalInputTokens: 96, totalOutputTokens: 60 });
    expect(metrics.maxConcurrencySeen).toBeLessThanOrEqual(3);
    // 5 chunks 3 ms apart: 4 gaps per request, TPOT close to the gap.
    expect(metrics.itlMs.count).toBe(48);
    expect(metrics.itlMs.median).toBeGreaterThanOrEqual(2);
    expect(metrics.tpotMs.mean).toBeGreaterThanOrEqual(2);
    expect(metrics.ttftMs.mean).toBeGreaterThanOrEqual(4);
    expect(metrics.e2elMs.mean).toBeGreaterThan(metrics.ttftMs.mean);
    expect(metrics.outputThroughput).toBeCloseTo(60 / metrics.durationS, 6);
    // The stub's /metrics: 65 steps (incl. the test request's 5 before the first scrape) at 0.5 ms each.
    expect(server.numSteps).toBe(60);
    expect(server.stepCpuMeanMs).toBeCloseTo(0.5, 6);
    expect(server.numPreemptions).toBe(0);
  });

  it('paces requests with --request-rate and counts chunks when the server sends no usage', async () => {
    stub = await startStub({ noUsage: true, splitEvents: true, tokenDelayMs: 1 });
    const { metrics, results } = await runServeBenchmark({ ...base(stub.baseUrl), numPrompts: 10, requestRate: 100 });
    expect(metrics.completed).toBe(10);
    expect(metrics.totalOutputTokens).toBe(50);
    // Requests leave on the seeded schedule (timers fire late, never early).
    const delays = arrivalDelaysS(10, 100, 0);
    expect(delays[0]).toBe(0);
    for (let i = 1; i < 10; i++)
      expect(results[i].startMs - results[i - 1].startMs).toBeGreaterThanOrEqual(delays[i] * 1000 - 1);
    expect(metrics.durationS).toBeGreaterThanOrEqual(delays.reduce((a, b) => a + b) - 0.001);
  });

  it('counts failed requests apart and fails fast when the test request fails', async () => {
    stub = await startStub({ failRequests: [3, 5] });
    const { metrics, results } = await runServeBenchmark({ ...base(stub.baseUrl), numPrompts: 6 });
    expect(metrics).toMatchObject({ completed: 4, failed: 2, totalOutputTokens: 20 });
    expect(results.filter((r) => !r.success).map((r) => r.error)).toEqual([
      expect.stringContaining('HTTP 500'),
      expect.stringContaining('HTTP 500'),
    ]);
    await stub.close();
    stub = await startStub({ failRequests: [0] });
    await expect(runServeBenchmark(base(stub.baseUrl))).rejects.toThrow(/test request failed: HTTP 500/);
  });

  it('runs from the command line, prints the table and writes the JSON result', async () => {
    stub = await startStub();
    const file = join(mkdtempSync(join(tmpdir(), 'bench-serve-')), 'result.json');
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const code = await runBenchServe([
      '--base-url',
      stub.baseUrl,
      '--model',
      'stub-model',
      '--num-prompts',
      '8',
      '--random-input-len',
      '16',
      '--random-output-len',
      '4',
      '--max-concurrency',
      '4',
      '--save-result',
      '--result-filename',
      file,
    ]);
    expect(code).toBe(0);
    const text = out.join('');
    for (const label of ['Mean TTFT (ms):', 'P99 TPOT (ms):', 'Median ITL (ms):', 'Output token throughput (tok/s):'])
      expect(text).toContain(label);
    expect(text).toMatch(/Engine CPU per step, mean \(ms\):\s+0\.500/);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json).toMatchObject({ completed: 8, total_input_tokens: 128, total_output_tokens: 32, max_concurrency: 4 });
    expect(json.mean_ttft_ms).toBeGreaterThan(0);
    await expect(runBenchServe(['--request-rate', 'fast'])).rejects.toThrow(/--request-rate/);
  });
});

describe('bench serve pieces', () => {
  it("computes vLLM's metrics: TPOT excludes the first token and one-token requests", () => {
    const r = (ttft: number, latency: number, outputTokens: number, itl: number[]): RequestResult => ({
      success: true,
      error: '',
      promptLen: 10,
      outputTokens,
      isUsageCount: true,
      ttft,
      itl,
      latency,
      startMs: 0,
    });
    const m = calculateMetrics(
      [r(0.1, 0.5, 5, [0.1, 0.1, 0.1, 0.1]), r(0.2, 0.2, 1, []), r(0.3, 1.3, 3, [0.5, 0.5])],
      2,
    );
    expect(m.tpotMs.count).toBe(2);
    expect(m.tpotMs.mean).toBeCloseTo((100 + 500) / 2, 9);
    expect(m.ttftMs.median).toBeCloseTo(200, 9);
    expect(m.itlMs.count).toBe(6);
    expect(m.e2elMs.mean).toBeCloseTo(((0.5 + 0.2 + 1.3) / 3) * 1000, 9);
    expect(m).toMatchObject({ completed: 3, totalInputTokens: 30, totalOutputTokens: 9 });
    expect(m.requestThroughput).toBe(1.5);
    expect(m.outputThroughput).toBe(4.5);
    expect(m.totalTokenThroughput).toBe(19.5);
    expect(m.maxConcurrencySeen).toBe(3);
  });

  it('takes percentiles as numpy does (linear interpolation)', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 99)).toBeCloseTo(3.97, 12);
    expect(percentile([7], 99)).toBe(7);
  });

  it('parses SSE split anywhere, CRLF included', () => {
    const parser = new SseParser();
    const bytes = new TextEncoder().encode('data: {"a":1}\r\n\r\ndata: {"b":2}\n\n: comment\n\ndata: [DONE]\n\n');
    const payloads: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) payloads.push(...parser.push(bytes.subarray(i, i + 3)));
    expect(payloads).toEqual(['{"a":1}', '{"b":2}', '[DONE]']);
  });

  it('draws repeatable random prompts with the asked lengths and vocabulary', () => {
    const options = { numPrompts: 50, inputLen: 100, outputLen: 20, rangeRatio: 0.5, vocabSize: 64, seed: 3 };
    const a = randomDataset({ ...options, excludedIds: new Set([0, 1, 2]) });
    expect(randomDataset({ ...options, excludedIds: new Set([0, 1, 2]) })).toEqual(a);
    for (const p of a) {
      expect(p.promptTokenIds.length).toBeGreaterThanOrEqual(50);
      expect(p.promptTokenIds.length).toBeLessThanOrEqual(150);
      expect(p.outputLen).toBeGreaterThanOrEqual(10);
      expect(p.outputLen).toBeLessThanOrEqual(30);
      expect(p.promptTokenIds.every((t) => t >= 3 && t < 64)).toBe(true);
    }
    expect(new Set(a.map((p) => p.promptTokenIds.length)).size).toBeGreaterThan(10);
    const fixed = randomDataset({ ...options, rangeRatio: 0 });
    expect(fixed.every((p) => p.promptTokenIds.length === 100 && p.outputLen === 20)).toBe(true);
  });

  it('spaces arrivals as a Poisson process of the asked rate', () => {
    const delays = arrivalDelaysS(4001, 50, 1).slice(1);
    const mean = delays.reduce((a, b) => a + b) / delays.length;
    expect(mean).toBeGreaterThan(0.018);
    expect(mean).toBeLessThan(0.022);
    expect(arrivalDelaysS(3, Infinity, 1)).toEqual([0, 0, 0]);
  });

  it('sums Prometheus samples over label sets', () => {
    const m = parsePrometheus('# HELP x\nx_total{a="1"} 2\nx_total{a="2"} 3.5\ny 1e3\n');
    expect(m.get('x_total')).toBe(5.5);
    expect(m.get('y')).toBe(1000);
  });
});

// sampling WGSL vs the f64 CPU reference (kernels/reference/sampling.ts) and against properties that do not need it.
// Tokens must be identical: the inputs keep every threshold (top-k count, top-p mass, min_p ratio) and every race
// far from a tie compared with f32 rounding, so f32 vs f64 cannot flip a decision. Logprobs: |gpu - ref| ≤ 1e-4
// (f32 logits of magnitude ≤ ~10 after temperature, log-sum-exp over ≤ 151936 terms in f32).
import { beforeAll, describe, expect, it } from 'vitest';
import { createBuffer, readBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { keptTokensRef, sampleRef } from '../../kernels/reference/sampling.js';
import {
  greedySampleRow,
  SAMPLING_OUT_WORDS,
  type SampleResult,
  type SampleRow,
  Sampling,
  type SamplingBinding,
} from '../../kernels/sampling.js';
import { randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

/** Plain sampling at temperature 1, no filters or penalties. */
const base: SampleRow = { ...greedySampleRow(0), temperature: 1, seed: 1 };

function expectSame(got: SampleResult[], ref: SampleResult[], what: string) {
  expect(
    got.map((r) => r.tokenId),
    `${what}: tokens`,
  ).toEqual(ref.map((r) => r.tokenId));
  got.forEach((g, i) => {
    const r = ref[i].logprobs;
    if (r === null) return expect(g.logprobs, `${what}: row ${i} logprobs`).toBeNull();
    const lp = g.logprobs!;
    expect(lp.rank, `${what}: row ${i} rank`).toBe(r.rank);
    expect(lp.logprob, `${what}: row ${i} logprob`).toBeCloseTo(r.logprob, 4);
    expect(
      lp.top.map((t) => t.tokenId),
      `${what}: row ${i} top tokens`,
    ).toEqual(r.top.map((t) => t.tokenId));
    lp.top.forEach((t, j) => expect(t.logprob, `${what}: row ${i} top ${j}`).toBeCloseTo(r.top[j].logprob, 4));
  });
}

describe.skipIf(!gpu)('sampling', () => {
  const g = gpu!;
  const kernel = g ? Sampling.create(g) : null;
  const bindings = new Map<string, { b: SamplingBinding; logits: GPUBuffer }>();
  /** One binding per (vocab, maxRows), reused across tests. */
  const binding = async (V: number, maxRows: number) => {
    const key = `${V}x${maxRows}`;
    let e = bindings.get(key);
    if (!e) {
      const logits = createBuffer(g, `logits ${key}`, maxRows * V * 4);
      e = { b: (await kernel!).bind(logits, { vocabSize: V, maxRows }, `sampling ${key}`), logits };
      bindings.set(key, e);
    }
    return e;
  };
  // lavapipe compiles a pipeline at its first dispatch, and these take it long (minutes with a cold shader cache on
  // a busy machine): run every entry point once here, under a generous timeout, so the tests time only themselves.
  beforeAll(async () => {
    const warm: SampleRow = { ...base, topK: 2, topP: 0.5, numLogprobs: 1, repetitionPenalty: 2, tokenIds: [1] };
    await run(3, new Float32Array(3), [warm]);
  }, 900_000);
  const run = async (V: number, logits: Float32Array, rows: SampleRow[], maxRows = rows.length) => {
    const { b, logits: buf } = await binding(V, maxRows);
    writeBuffer(g, buf, 0, logits);
    b.setRows(rows);
    await runDispatches(g, [b]);
    return b.read();
  };

  it('matches the reference on 1..5 rows of mixed parameters over several steps (V = 37), no write past the rows', async () => {
    const V = 37;
    const mixed: SampleRow[] = [
      { ...base, temperature: 0, numLogprobs: 3 },
      { ...base, temperature: 0.7, seed: 42, numLogprobs: 5 },
      { ...base, temperature: 1.3, topK: 6, seed: -7, numLogprobs: 0 },
      { ...base, temperature: 0.9, topP: 0.62, minP: 0.05, seed: 2 ** 40 + 3, logprobSource: 'raw', numLogprobs: 2 },
      {
        ...base,
        temperature: 1.1,
        topK: 9,
        topP: 0.8,
        seed: 5,
        repetitionPenalty: 1.4,
        presencePenalty: 0.3,
        frequencyPenalty: 0.25,
        tokenIds: [3, 4, 4, 9, 3, 3, 20, 36],
        numPromptTokens: 3,
        suppressTokenIds: [0, 11],
        numLogprobs: 4,
      },
    ];
    const { b } = await binding(V, 6);
    g.queue.writeBuffer(b.output, 0, new Uint32Array(6 * SAMPLING_OUT_WORDS).fill(SENTINEL));
    for (let step = 0; step < 3; step++) {
      for (let rows = 1; rows <= 5; rows++) {
        const logits = randomArray(rows * V, 100 * step + rows, 4);
        const set = mixed.slice(0, rows).map((r) => ({ ...r, step }));
        expectSame(await run(V, logits, set, 6), sampleRef(logits, V, set), `step ${step}, ${rows} rows`);
      }
    }
    const guard = new Uint32Array(await readOut(b, 5, 1));
    expect(
      [...guard].every((v) => v === SENTINEL),
      'write past the last row',
    ).toBe(true);
  });

  it('V = 1: every mode returns token 0 with logprob 0', async () => {
    const rows: SampleRow[] = [
      { ...base, temperature: 0, numLogprobs: 5 },
      { ...base, topK: 1, topP: 0.5, minP: 0.5, numLogprobs: 1 },
      { ...base, repetitionPenalty: 2, tokenIds: [0, 0], numPromptTokens: 1, numLogprobs: 0 },
    ];
    const got = await run(1, new Float32Array([0.25, -3, 7]), rows);
    for (const r of got) {
      expect(r.tokenId).toBe(0);
      expect(r.logprobs!.logprob).toBe(0);
      expect(r.logprobs!.rank).toBe(1);
    }
    expect(got[0].logprobs!.top).toEqual([{ tokenId: 0, logprob: 0 }]);
  });

  it('V = 151936: one row per mode matches the reference', async () => {
    const V = 151936;
    const logits = randomArray(2 * V, 9, 6);
    logits[77_777] = 14; // a clear favourite so top-p keeps a moderate set
    const rows: SampleRow[][] = [
      [
        { ...base, temperature: 0, numLogprobs: 20 },
        { ...base, temperature: 0.8, seed: 3, numLogprobs: 1 },
      ],
      [
        { ...base, temperature: 0.6, topK: 40, topP: 0.9, minP: 0.001, seed: 11, numLogprobs: 5 },
        { ...base, temperature: 2, topP: 0.75, seed: 12, step: 9, tokenIds: [5, 5, 99], numPromptTokens: 1 },
      ],
    ];
    for (const set of rows) expectSame(await run(V, logits, set, 2), sampleRef(logits, V, set), 'V=151936');
  });

  it('greedy takes the lowest index on ties; top-N lists ties by index; rank counts logprobs ≥ the chosen', async () => {
    const V = 37;
    const flat = new Float32Array(V);
    const [r0] = await run(V, flat, [{ ...base, temperature: 0, numLogprobs: 4 }], 1);
    expect(r0.tokenId).toBe(0);
    expect(r0.logprobs!.top.map((t) => t.tokenId)).toEqual([0, 1, 2, 3]);
    expect(r0.logprobs!.rank).toBe(V);
    expect(r0.logprobs!.logprob).toBeCloseTo(-Math.log(V), 5);
    const peaks = randomArray(V, 3, 1);
    peaks[9] = 5;
    peaks[21] = 5;
    peaks[30] = 5;
    const [r1] = await run(V, peaks, [{ ...base, temperature: 0, numLogprobs: 2 }], 1);
    expect(r1.tokenId).toBe(9);
    expect(r1.logprobs!.top.map((t) => t.tokenId)).toEqual([9, 21]);
  });

  it('top-k = 1 and a tiny top-p always give the argmax; top-p keeps every token tied at the cut', async () => {
    const V = 37;
    const logits = randomArray(V, 5, 2);
    logits[17] = 2.5;
    const rows = (over: Partial<SampleRow>) =>
      Array.from({ length: 64 }, (_, s) => ({ ...base, seed: s * 7919, ...over }));
    for (const over of [{ topK: 1 }, { topP: 1e-6 }, { topP: 1e-6, temperature: 2 }]) {
      const got = await run(V, tile(logits, 64), rows(over), 64);
      expect(new Set(got.map((r) => r.tokenId)), JSON.stringify(over)).toEqual(new Set([17]));
    }
    logits[4] = 2.5; // tied with 17: both are "the top", so both survive any top-p
    const got = await run(V, tile(logits, 64), rows({ topP: 1e-6 }), 64);
    expect(new Set(got.map((r) => r.tokenId))).toEqual(new Set([4, 17]));
  });

  it('min_p drops tokens below min_p · p_max', async () => {
    const V = 37;
    const logits = new Float32Array(V).fill(-1);
    logits[2] = 1; // p_max
    logits[8] = 1 - Math.log(2); // half of p_max
    logits[30] = 1 - Math.log(4); // a quarter
    const got = await run(V, tile(logits, 64), seeds(64, { minP: 0.3 }), 64);
    expect(new Set(got.map((r) => r.tokenId))).toEqual(new Set([2, 8]));
  });

  it('penalties: repetition, frequency and presence as vLLM applies them; suppressed tokens never win', async () => {
    const V = 37;
    const logits = new Float32Array(V).map((_, i) => (i % 5) - 2);
    logits[6] = 3; // positive and repeated in the prompt: divided by 2
    logits[7] = -1.5; // negative and in the output twice: multiplied by 2, then 2·freq and pres subtracted
    logits[8] = 9; // suppressed
    const row: SampleRow = {
      ...base,
      temperature: 0,
      repetitionPenalty: 2,
      frequencyPenalty: 0.5,
      presencePenalty: 0.25,
      tokenIds: [6, 6, 1, 7, 7],
      numPromptTokens: 3,
      suppressTokenIds: [8],
      numLogprobs: 20,
    };
    const [got] = await run(V, logits, [row], 1);
    expectSame([got], sampleRef(logits, V, [row]), 'penalties');
    const x = Float64Array.from(logits);
    x[6] = 3 / 2;
    x[1] = x[1] > 0 ? x[1] / 2 : x[1] * 2;
    x[7] = -1.5 * 2 - 2 * 0.5 - 0.25;
    x[8] = -Infinity;
    const lse = Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
    expect(got.tokenId).toBe(4); // 8 (9) is suppressed and 6 (3) halved to 1.5: the first 2 wins
    for (const t of got.logprobs!.top) expect(t.logprob).toBeCloseTo(x[t.tokenId] - lse, 5);
  });

  it('raw logprobs are log_softmax of the model logits whatever the processing', async () => {
    const V = 37;
    const logits = randomArray(V, 21, 3);
    const row: SampleRow = { ...base, temperature: 0.5, topK: 3, seed: 4, numLogprobs: 6, logprobSource: 'raw' };
    const [got] = await run(V, logits, [row], 1);
    const lse = Math.log(logits.reduce((s, v) => s + Math.exp(v), 0));
    expect(got.logprobs!.logprob).toBeCloseTo(logits[got.tokenId] - lse, 5);
    for (const t of got.logprobs!.top) expect(t.logprob).toBeCloseTo(logits[t.tokenId] - lse, 5);
  });

  it('the same seed and step give the same token; other seeds give others', async () => {
    const V = 37;
    const logits = tile(new Float32Array(V), 64); // uniform: every token equally likely
    const a = await run(V, logits, seeds(64, {}), 64);
    const b = await run(V, logits, seeds(64, {}), 64);
    expect(b.map((r) => r.tokenId)).toEqual(a.map((r) => r.tokenId));
    expect(new Set(a.map((r) => r.tokenId)).size).toBeGreaterThan(20);
    const later = await run(V, logits, seeds(64, { step: 1 }), 64);
    expect(later.map((r) => r.tokenId)).not.toEqual(a.map((r) => r.tokenId));
  });

  it('draws follow the distribution (chi-square over 1024 seeds, plain and filtered)', async () => {
    const V = 8;
    const logits = new Float32Array([0.5, -1, 1.2, 0, 0.3, -0.4, 2, -2]);
    for (const over of [{ temperature: 0.8 }, { temperature: 1.2, topK: 6, topP: 0.9, minP: 0.05 }]) {
      const row = { ...base, ...over };
      const x = Float64Array.from(logits, (v) => v / row.temperature);
      const kept = keptTokensRef(x, row);
      const w = Array.from(x, (v, i) => (kept[i] ? Math.exp(v) : 0));
      const total = w.reduce((s, v) => s + v, 0);
      const counts = new Array<number>(V).fill(0);
      const n = 1024;
      for (let k = 0; k < n / 256; k++) {
        const rows = Array.from({ length: 256 }, (_, s) => ({ ...row, seed: 1000 + k * 256 + s, step: k }));
        for (const r of await run(V, tile(logits, 256), rows, 256)) counts[r.tokenId]++;
      }
      let chi2 = 0;
      let dof = -1;
      for (let i = 0; i < V; i++) {
        const expected = (n * w[i]) / total;
        if (expected === 0) expect(counts[i], `token ${i} was filtered out`).toBe(0);
        else {
          chi2 += (counts[i] - expected) ** 2 / expected;
          dof++;
        }
      }
      // 99.99th percentile of chi-square with ≤ 7 degrees of freedom is ≈ 29.9.
      expect(chi2, `${JSON.stringify(over)}: chi2 ${chi2.toFixed(1)} over ${dof} dof, counts ${counts}`).toBeLessThan(
        30,
      );
    }
  });

  it('rejects a logits buffer smaller than maxRows · vocab, naming the label', async () => {
    const k = await kernel!;
    expect(() => k.bind(createBuffer(g, 'small', 64), { maxRows: 2, vocabSize: 37 }, 'lm_head.sampler')).toThrow(
      /lm_head\.sampler: logits has 64 bytes, expected at least 296/,
    );
  });

  function seeds(count: number, over: Partial<SampleRow>): SampleRow[] {
    return Array.from({ length: count }, (_, s) => ({ ...base, seed: s * 104729 + 1, ...over }));
  }

  function readOut(b: SamplingBinding, row: number, rows: number) {
    return readBuffer(g, b.output, row * SAMPLING_OUT_WORDS * 4, rows * SAMPLING_OUT_WORDS * 4);
  }
});

function tile(row: Float32Array, times: number): Float32Array {
  const out = new Float32Array(row.length * times);
  for (let i = 0; i < times; i++) out.set(row, i * row.length);
  return out;
}

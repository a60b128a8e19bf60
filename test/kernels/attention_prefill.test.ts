// attention_prefill WGSL vs the f64 paged-attention reference (which reads the same stored bf16 / fp8 / f32 K/V).
// Tolerance: |gpu − ref| ≤ 5e-6 + 5e-5·|ref| as for decode: the reference sees the cache's own values, so only
// f32 accumulation, f32 exp and the q·scale rounding remain (lavapipe: max ≈ 2e-7).
// Covered: several sequences of different lengths packed in one dispatch (one with no new tokens), cached prefixes (query rows start at
// ctx − qlen), contexts 1, 17, 45, 300, D 32/64/128, GQA 4/2 and 8/1, tiles of 16 and 4 rows, shuffled NaN-poisoned
// caches, q read from a fused qkv row, rows past the step's tokens and a guard after out untouched.
// Consistency: chunked prefill (two chunks) and prefill-then-decode give the rows of one long prefill.
import { describe, expect, it } from 'vitest';
import { AttentionDecode } from '../../kernels/attention_decode.js';
import { AttentionPrefill } from '../../kernels/attention_prefill.js';
import { AttentionStep } from '../../kernels/attention_step.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import type { KvDtype } from '../../kernels/kv_cache.js';
import { pagedAttentionRef } from '../../kernels/reference/attention.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { buildPagedCache, type PagedSetup, seqRefs } from './attention_check.js';

const gpu = await gpuOrSkip();
const SENTINEL = -777.25;
const GUARD = 64;
const TOL = { atol: 5e-6, rtol: 5e-5 };

interface Case {
  dtype: KvDtype;
  hq: number;
  hkv: number;
  D: number;
  contexts: number[];
  queryLens: number[];
  blockQ?: number;
  fused?: boolean;
}

const cases: Case[] = [
  { dtype: 'bf16', hq: 4, hkv: 2, D: 32, contexts: [17, 300, 1, 45], queryLens: [17, 17, 1, 40], fused: true },
  { dtype: 'fp8e4m3', hq: 8, hkv: 1, D: 128, contexts: [300, 17, 1], queryLens: [20, 17, 1] },
  { dtype: 'f32', hq: 4, hkv: 2, D: 64, contexts: [33, 300, 20, 45], queryLens: [33, 9, 0, 3], blockQ: 4 },
];

/** Runs prefill over `queryLens` rows per sequence; returns the (T, Hq, D) output and the q it used. */
async function runPrefill(
  kernel: AttentionPrefill,
  setup: PagedSetup,
  contexts: number[],
  queryLens: number[],
  q: Float32Array,
  stride: number,
): Promise<{ out: Float32Array; T: number }> {
  const g = gpu!;
  const { hq, D } = { hq: kernel.variant.numQHeads, D: kernel.variant.headDim };
  const S = contexts.length;
  const T = queryLens.reduce((a, b) => a + b, 0);
  const maxTokens = T + 3;
  const step = new AttentionStep(g, { maxSeqs: S + 1, maxTokens, maxContextLen: setup.maxBlocks * 16 });
  step.update({ numSeqs: S, numTokens: T, maxContextLen: Math.max(...contexts) });
  const starts = new Uint32Array(S + 2);
  queryLens.forEach((l, s) => (starts[s + 1] = starts[s] + l));
  const outElems = maxTokens * hq * D;
  const outBuf = createBufferFrom(g, 'out', new Float32Array(outElems + GUARD).fill(SENTINEL));
  const qRows = new Float32Array(maxTokens * stride);
  qRows.set(q.subarray(0, Math.min(q.length, qRows.length)));
  const d = kernel.bind(
    {
      q: createBufferFrom(g, 'q', qRows),
      queryStart: createBufferFrom(g, 'query_start', starts),
      contextLens: createBufferFrom(g, 'ctx', Uint32Array.from([...contexts, 0])),
      blockTables: createBufferFrom(g, 'tables', setup.blockTables),
      cache: setup.cache,
      out: outBuf,
    },
    step,
    { qTokenStride: stride, maxBlocksPerSeq: setup.maxBlocks, ...setup.scales },
  );
  await runDispatches(g, [d]);
  const got = new Float32Array(await readBuffer(g, outBuf));
  expect(
    [...got.subarray(T * hq * D)].every((v) => v === SENTINEL),
    `${kernel.name}: write past the step's tokens`,
  ).toBe(true);
  return { out: got.subarray(0, T * hq * D), T };
}

describe.skipIf(!gpu)('attention_prefill', () => {
  const g = gpu!;
  for (const c of cases) {
    const name = `attention_prefill(kv=${c.dtype},Hq=${c.hq},Hkv=${c.hkv},D=${c.D},ctx=${c.contexts},q=${c.queryLens}${c.blockQ ? `,bq=${c.blockQ}` : ''}${c.fused ? ',fused qkv' : ''})`;
    it(name, async () => {
      const { hq, hkv, D } = c;
      // One block-table row holds the sequence's blocks plus one spare (rows longer than needed must work).
      const maxBlocks = Math.ceil(Math.max(...c.contexts) / 16) + 1;
      const setup = buildPagedCache(g, c.dtype, hkv, D, [...c.contexts, 0], D + c.contexts.length * 5, maxBlocks);
      const stride = c.fused ? (hq + 2 * hkv) * D : hq * D;
      const T = c.queryLens.reduce((a, b) => a + b, 0);
      const q = randomArray(T * stride, 7 * D + T, 3);
      const kernel = await AttentionPrefill.create(g, {
        numQHeads: hq,
        numKvHeads: hkv,
        headDim: D,
        dtype: c.dtype,
        blockQ: c.blockQ,
      });
      const { out } = await runPrefill(kernel, setup, c.contexts, c.queryLens, q, stride);
      const ref = pagedAttentionRef(setup.shape, setup.kBytes, setup.vBytes, hq, q, seqRefs(setup, c.queryLens), {
        qTokenStride: stride,
        ...setup.scales,
      });
      const rep = compareClose(out, ref, { ...TOL, name: kernel.name });
      expect(rep.ok, rep.message).toBe(true);
    });
  }

  it('chunked prefill and prefill-then-decode equal one long prefill (bf16, Hq=4, Hkv=2, D=32, 37 tokens)', async () => {
    const [hq, hkv, D, L] = [4, 2, 32, 37];
    const setup = buildPagedCache(g, 'bf16', hkv, D, [L, 0], 99, 4);
    const q = randomArray(L * hq * D, 1234, 3);
    const prefill = await AttentionPrefill.create(g, { numQHeads: hq, numKvHeads: hkv, headDim: D, dtype: 'bf16' });
    const full = (await runPrefill(prefill, setup, [L], [L], q, hq * D)).out;
    const rowElems = hq * D;
    // Chunk 1: tokens 0..19 with nothing cached; chunk 2: tokens 20..35 over the 20 cached ones.
    const c1 = (await runPrefill(prefill, setup, [20], [20], q, rowElems)).out;
    const c2 = (await runPrefill(prefill, setup, [36], [16], q.subarray(20 * rowElems), rowElems)).out;
    for (const [what, got, from] of [
      ['chunk 1', c1, 0],
      ['chunk 2', c2, 20],
    ] as const) {
      const want = full.subarray(from * rowElems, from * rowElems + got.length);
      const rep = compareClose(got, want, { ...TOL, name: `${what} vs one prefill` });
      expect(rep.ok, rep.message).toBe(true);
    }
    // Decode of the last token (context 37) against the full prefill's last row.
    const decode = await AttentionDecode.create(g, {
      numQHeads: hq,
      numKvHeads: hkv,
      headDim: D,
      dtype: 'bf16',
    });
    // Partitions of 16 tokens: three for 37, so the reduce path.
    const step = new AttentionStep(g, { maxSeqs: 1, maxTokens: 1, maxContextLen: 64, partitionSize: 16 });
    step.update({ numSeqs: 1, numTokens: 1, maxContextLen: L });
    const out = createBuffer(g, 'out', rowElems * 4);
    const d = decode.bind(
      {
        q: createBufferFrom(g, 'q', q.slice((L - 1) * rowElems)),
        blockTables: createBufferFrom(g, 'tables', setup.blockTables),
        contextLens: createBufferFrom(g, 'ctx', Uint32Array.from([L])),
        cache: setup.cache,
        out,
      },
      step,
      { maxBlocksPerSeq: setup.maxBlocks },
    );
    await runDispatches(g, [d]);
    const got = new Float32Array(await readBuffer(g, out));
    const rep = compareClose(got, full.subarray((L - 1) * rowElems), { ...TOL, name: 'decode vs last prefill row' });
    expect(rep.ok, rep.message).toBe(true);
  });

  it('rejects a query_start buffer too short for the step, naming the layer', async () => {
    const kernel = await AttentionPrefill.create(g, { numQHeads: 4, numKvHeads: 2, headDim: 32, dtype: 'bf16' });
    const setup = buildPagedCache(g, 'bf16', 2, 32, [20], 1);
    const buf = createBuffer(g, 'x', 1 << 16);
    const step = new AttentionStep(g, { maxSeqs: 3, maxTokens: 8, maxContextLen: 64 });
    expect(() =>
      kernel.bind(
        {
          q: buf,
          queryStart: createBuffer(g, 'qs', 12),
          contextLens: buf,
          blockTables: buf,
          cache: setup.cache,
          out: buf,
        },
        step,
        {},
        'layers.0.attn',
      ),
    ).toThrow(/layers\.0\.attn: queryStart has 12 bytes, expected at least 16 for 3 sequences \(\+1\)/);
  });
});

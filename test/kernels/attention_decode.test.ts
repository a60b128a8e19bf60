// attention_decode WGSL vs the f64 paged-attention reference (which reads the same stored bf16 / fp8 / f32 K/V).
// Tolerance: |gpu − ref| ≤ 5e-6 + 5e-5·|ref|: the reference sees exactly the cache's values, so what remains is f32
// accumulation over ≤ 300 tokens, f32 exp and the q·scale rounding (lavapipe: max ≈ 2e-7 at |out| ≲ 1; the
// margin is for GPUs whose exp is a few ulp off).
// Covered: D 32/64/128, GQA 4/2 and 8/1, contexts 0 (padding slot), 1, 17, 300, shuffled blocks, 1 / 2 / 5 / 7
// partitions of 48..1024 tokens (the single-partition path writes directly, the others go through the reduce), q read from a fused
// qkv row, rows past the step's sequences and a guard after out untouched.
import { describe, expect, it } from 'vitest';
import { AttentionDecode } from '../../kernels/attention_decode.js';
import { AttentionStep } from '../../kernels/attention_step.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import type { KvDtype } from '../../kernels/kv_cache.js';
import { causalAttentionRef, pagedAttentionRef } from '../../kernels/reference/attention.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { buildPagedCache, seqRefs } from './attention_check.js';

const gpu = await gpuOrSkip();
const SENTINEL = -777.25;
const GUARD = 64;

interface Case {
  dtype: KvDtype;
  hq: number;
  hkv: number;
  D: number;
  contexts: number[];
  partitionSize?: number;
  wgSize?: number;
  /** q heads inside a fused qkv row (offset 0, stride (Hq + 2·Hkv)·D). */
  fused?: boolean;
}

const cases: Case[] = [
  { dtype: 'bf16', hq: 4, hkv: 2, D: 32, contexts: [17, 1, 300, 0], fused: true },
  { dtype: 'bf16', hq: 8, hkv: 1, D: 128, contexts: [1, 17, 200] },
  { dtype: 'fp8e4m3', hq: 8, hkv: 1, D: 128, contexts: [300, 1, 17], partitionSize: 64 },
  { dtype: 'fp8e4m3', hq: 8, hkv: 1, D: 128, contexts: [17, 5, 0], partitionSize: 1024 },
  { dtype: 'f32', hq: 4, hkv: 2, D: 64, contexts: [300, 33], partitionSize: 48, fused: true, wgSize: 128 },
];

describe.skipIf(!gpu)('attention_decode', () => {
  const g = gpu!;
  for (const c of cases) {
    const parts = Math.ceil(Math.max(...c.contexts) / (c.partitionSize ?? 256));
    const name = `attention_decode(kv=${c.dtype},Hq=${c.hq},Hkv=${c.hkv},D=${c.D},ctx=${c.contexts},partitions=${parts}${c.fused ? ',fused qkv' : ''}${c.wgSize ? `,wg=${c.wgSize}` : ''})`;
    it(name, async () => {
      const { hq, hkv, D } = c;
      const S = c.contexts.length;
      const maxSeqs = S + 2;
      const setup = buildPagedCache(g, c.dtype, hkv, D, [...c.contexts, 0, 0], D + S * 7, undefined);
      const stride = c.fused ? (hq + 2 * hkv) * D : hq * D;
      const q = randomArray(maxSeqs * stride, 3 * D + S, 3);
      const kernel = await AttentionDecode.create(g, {
        numQHeads: hq,
        numKvHeads: hkv,
        headDim: D,
        dtype: c.dtype,
        wgSize: c.wgSize,
      });
      const step = new AttentionStep(g, {
        maxSeqs,
        maxTokens: maxSeqs,
        maxContextLen: setup.maxBlocks * 16,
        partitionSize: c.partitionSize,
      });
      step.update({ numSeqs: S, numTokens: S, maxContextLen: Math.max(...c.contexts) });
      expect(step.numPartitions).toBe(parts);
      const outElems = maxSeqs * hq * D;
      const out = createBufferFrom(g, 'out', new Float32Array(outElems + GUARD).fill(SENTINEL));
      const d = kernel.bind(
        {
          q: createBufferFrom(g, 'q', q),
          blockTables: createBufferFrom(g, 'tables', setup.blockTables),
          contextLens: createBufferFrom(g, 'ctx', Uint32Array.from(setup.contextLens)),
          cache: setup.cache,
          out,
        },
        step,
        { qTokenStride: stride, maxBlocksPerSeq: setup.maxBlocks, ...setup.scales },
      );
      await runDispatches(g, [d]);
      const got = new Float32Array(await readBuffer(g, out));
      const ref = pagedAttentionRef(
        setup.shape,
        setup.kBytes,
        setup.vBytes,
        hq,
        q,
        seqRefs(
          setup,
          c.contexts.map(() => 1),
        ),
        { qTokenStride: stride, ...setup.scales },
      );
      // Query row s of a decode step is sequence s's last context token: the reference's positions agree.
      const rep = compareClose(got.subarray(0, S * hq * D), ref, { atol: 5e-6, rtol: 5e-5, name: kernel.name });
      expect(rep.ok, rep.message).toBe(true);
      expect(
        [...got.subarray(S * hq * D)].every((v) => v === SENTINEL),
        "write past the step's sequences",
      ).toBe(true);
    });
  }

  // Not a kernel tolerance but the storage error the model inherits: the same K/V (values ~±1) stored as bf16 and as
  // fp8 (per-tensor scales 0.02 / 0.015, i.e. values at ±50..67 in E4M3), attended by the GPU, against f64 attention
  // on the unrounded K/V. Bounds (normalized MSE): bf16 < 1e-4, fp8 < 3e-3 (E4M3 keeps 3 mantissa bits); lavapipe
  // measured 4.1e-6 and 1.5e-3 (fp8: ~3.9% RMS relative error of the output).
  it('bf16 and fp8 KV stay within their storage error of exact attention (Hq=8, Hkv=1, D=128, ctx 300, 17)', async () => {
    const [hq, hkv, D] = [8, 1, 128];
    const contexts = [300, 17];
    const nmse: Record<string, number> = {};
    for (const dtype of ['bf16', 'fp8e4m3'] as const) {
      const setup = buildPagedCache(g, dtype, hkv, D, contexts, 4242);
      const q = randomArray(contexts.length * hq * D, 77, 3);
      const kernel = await AttentionDecode.create(g, { numQHeads: hq, numKvHeads: hkv, headDim: D, dtype });
      const step = new AttentionStep(g, { maxSeqs: 2, maxTokens: 2, maxContextLen: setup.maxBlocks * 16 });
      step.update({ numSeqs: 2, numTokens: 2, maxContextLen: 300 });
      const out = createBuffer(g, 'out', contexts.length * hq * D * 4);
      const d = kernel.bind(
        {
          q: createBufferFrom(g, 'q', q),
          blockTables: createBufferFrom(g, 'tables', setup.blockTables),
          contextLens: createBufferFrom(g, 'ctx', Uint32Array.from(contexts)),
          cache: setup.cache,
          out,
        },
        step,
        { maxBlocksPerSeq: setup.maxBlocks, ...setup.scales },
      );
      await runDispatches(g, [d]);
      const got = new Float32Array(await readBuffer(g, out));
      const exact = new Float64Array(got.length);
      contexts.forEach((L, s) => {
        const row = q.subarray(s * hq * D, (s + 1) * hq * D);
        const { k, v } = setup.raw[s];
        exact.set(causalAttentionRef({ numQHeads: hq, numKvHeads: hkv, headDim: D }, row, 1, L - 1, k, v), s * hq * D);
      });
      nmse[dtype] = compareClose(got, exact, { atol: Infinity, rtol: 0, name: dtype }).nmse;
    }
    expect(nmse.bf16, `bf16 KV nmse ${nmse.bf16}`).toBeLessThan(1e-4);
    expect(nmse.fp8e4m3, `fp8 KV nmse ${nmse.fp8e4m3}`).toBeLessThan(3e-3);
    expect(nmse.fp8e4m3, 'fp8 rounds more than bf16').toBeGreaterThan(nmse.bf16);
  });

  it('records one dispatch for a single partition and partition + reduce otherwise', async () => {
    const kernel = await AttentionDecode.create(g, { numQHeads: 4, numKvHeads: 2, headDim: 32, dtype: 'bf16' });
    const setup = buildPagedCache(g, 'bf16', 2, 32, [300, 0], 3);
    const step = new AttentionStep(g, { maxSeqs: 2, maxTokens: 2, maxContextLen: setup.maxBlocks * 16 });
    const buf = createBuffer(g, 'x', 1 << 14);
    const d = kernel.bind({ q: buf, blockTables: buf, contextLens: buf, cache: setup.cache, out: buf }, step, {
      maxBlocksPerSeq: setup.maxBlocks,
    });
    const grids: number[][] = [];
    const pass = {
      setPipeline() {},
      setBindGroup() {},
      dispatchWorkgroups: (...xyz: number[]) => grids.push(xyz),
    } as unknown as GPUComputePassEncoder;
    step.update({ numSeqs: 2, numTokens: 2, maxContextLen: 256 });
    d.encode(pass);
    expect(grids).toEqual([[4, 2, 1]]);
    grids.length = 0;
    step.update({ numSeqs: 1, numTokens: 1, maxContextLen: 300 });
    d.encode(pass);
    expect(grids).toEqual([
      [4, 1, 2],
      [4, 1],
    ]);
    grids.length = 0;
    step.update({ numSeqs: 0, numTokens: 0, maxContextLen: 0 });
    d.encode(pass);
    expect(grids).toEqual([]);
  });

  it('rejects a partition larger than workgroup memory holds and a short block table, naming the layer', async () => {
    expect(() => new AttentionStep(g, { maxSeqs: 2, maxTokens: 2, maxContextLen: 64, partitionSize: 2048 })).toThrow(
      /attention_step: partitionSize 2048 must be an integer in \[16, 1024\], a multiple of 16/,
    );
    const kernel = await AttentionDecode.create(g, { numQHeads: 4, numKvHeads: 2, headDim: 32, dtype: 'bf16' });
    const setup = buildPagedCache(g, 'bf16', 2, 32, [20], 1);
    const buf = createBuffer(g, 'x', 4096);
    const bufs = { q: buf, blockTables: buf, contextLens: buf, cache: setup.cache, out: buf };
    const step = new AttentionStep(g, { maxSeqs: 2, maxTokens: 2, maxContextLen: 64 });
    const huge = new AttentionStep(g, { maxSeqs: 4096, maxTokens: 4096, maxContextLen: 1 << 20, partitionSize: 1024 });
    expect(() => kernel.bind(bufs, huge, {}, 'layers.1.attn')).toThrow(
      /layers\.1\.attn: split-K partials for 4096 sequences × 4 heads × 1024 partitions need 2147483648 bytes/,
    );
    const small = createBuffer(g, 'tables', 16);
    expect(() => kernel.bind({ ...bufs, blockTables: small }, step, {}, 'layers.1.attn')).toThrow(
      /layers\.1\.attn: blockTables has 16 bytes, expected at least 32 for 2 sequences × 4 blocks/,
    );
  });
});

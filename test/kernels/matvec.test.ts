// Dense matvec (kernels/matvec.wgsl) vs the f64 reference computed from the same packed bytes, on odd shapes:
// K = 16·odd (16, 48, 272), N off the tile (1, 7, 33, 130), M = 1, 3, 16; every format, both reductions
// (subgroups / workgroup memory), both decodes (f16 bit patterns / arithmetic), several work splits and x tiles.
// Tolerance per output: |gpu − ref| ≤ (K + 16)·2^-24·Σ_k|x_k·w_k| + 2^-23·|ref|, plus 2^-11·|ref| + 2^-25 for f16
// output (see matvec_check.ts). Out buffers carry a guard region; stride gaps must stay untouched. The rmsNorm
// prologue (x RMSNorm'ed inside the kernel, reference in f64) adds (K/2·2^-24 + 2^-20)·Σ_k|x_k·w_k|.
import { describe, expect, it } from 'vitest';
import { Matvec, type MatvecVariant, matvecVariantFor } from '../../kernels/matvec.js';
import type { MatvecTuning } from '../../kernels/matvec_tuning.js';
import { destroyWeight, randomHostWeight, uploadHostWeight } from '../../kernels/reference/matvec_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { checkMatvec, randomX } from './matvec_check.js';

const gpu = await gpuOrSkip();

const FORMATS: WeightFormat[] = ['nvfp4', 'fp8', 'bf16', 'f32'];
const SHAPES = [
  { M: 1, N: 1, K: 16 },
  { M: 3, N: 7, K: 48 },
  { M: 16, N: 33, K: 272 },
  { M: 1, N: 130, K: 272 },
];
// (mTile, tuning): the default split, several rows per thread with 4 row groups, an odd split with a wide x tile
const SPLITS: { mTile: number; tuning?: MatvecTuning }[] = [
  { mTile: 1 },
  { mTile: 4, tuning: { rows: 2, tpk: 16, rowGroups: 4 } },
  { mTile: 16, tuning: { rows: 3, tpk: 8, rowGroups: 3 } },
];

describe.skipIf(!gpu)('matvec dense', () => {
  const g = gpu!;
  const reductions = g?.caps.hasSubgroups ? [true, false] : [false];

  async function run(
    format: WeightFormat,
    shape: { M: number; N: number; K: number },
    v: Partial<MatvecVariant> & { act?: 'f32' | 'f16'; out?: 'f32' | 'f16' },
    o: {
      seed?: number;
      numRowGroups?: number;
      scaleBlock?: [number, number];
      preScale?: boolean;
      xStride?: number;
      outStride?: number;
      residual?: boolean;
      norm?: boolean;
    } = {},
  ) {
    const { M, N, K } = shape;
    const host = randomHostWeight(format, 1, N, K, { seed: o.seed ?? N * 31 + K, ...o });
    const weight = uploadHostWeight(g, host, `test.${format}`);
    const variant = matvecVariantFor(g, weight, { act: 'f32', out: 'f32', ...v });
    const kernel = await Matvec.create(g, variant);
    const xStride = o.xStride ?? K;
    const nOut = kernel.outColumns(weight);
    const r = await checkMatvec(g, {
      kernel,
      host,
      weight,
      M,
      x: randomX(M * xStride, M + K),
      xStride,
      outStride: o.outStride,
      residual: o.residual ? randomX(M * nOut, 7 * N) : undefined,
      norm: o.norm ? { weight: randomX(K, 5 * K + 1), eps: 1e-6 } : undefined,
    });
    destroyWeight(weight);
    expect(r.ok, r.message).toBe(true);
  }

  for (const format of FORMATS) {
    for (const subgroups of reductions) {
      it(`matvec(format=${format},subgroups=${subgroups}) over shapes × splits`, async () => {
        for (const split of SPLITS)
          for (const shape of SHAPES)
            await run(format, shape, { subgroups, f16Decode: subgroups, mTile: split.mTile, tuning: split.tuning });
      });
    }
  }

  it('nvfp4 and fp8: arithmetic decode with subgroups, f16 decode without', async () => {
    for (const format of ['nvfp4', 'fp8'] as const)
      for (const subgroups of reductions)
        await run(format, { M: 3, N: 33, K: 272 }, { subgroups, f16Decode: !subgroups && g.caps.hasF16 });
  });

  it.skipIf(!gpu?.caps.hasF16)('f16 activations and/or f16 output (nvfp4, bf16, fp8)', async () => {
    for (const format of ['nvfp4', 'bf16', 'fp8'] as const)
      for (const [act, out] of [
        ['f16', 'f32'],
        ['f32', 'f16'],
        ['f16', 'f16'],
      ] as const)
        await run(format, { M: 3, N: 33, K: 48 }, { act, out, mTile: 4 });
  });

  it('fp8 scales: per-tensor, per-channel, 128×128 blocks with ragged edges, small odd blocks', async () => {
    const shape = { M: 3, N: 130, K: 272 };
    for (const scaleBlock of [
      [130, 272],
      [1, 272],
      [128, 128],
      [5, 48],
    ] as [number, number][])
      for (const subgroups of reductions) await run('fp8', shape, { subgroups }, { scaleBlock });
  });

  it('nvfp4 with numRowGroups 2 and preScale; preScale on bf16 and fp8 too', async () => {
    await run('nvfp4', { M: 3, N: 130, K: 272 }, {}, { numRowGroups: 2 });
    await run('nvfp4', { M: 3, N: 130, K: 272 }, { mTile: 4 }, { numRowGroups: 2, preScale: true });
    await run('bf16', { M: 1, N: 33, K: 48 }, {}, { preScale: true });
    await run('fp8', { M: 3, N: 7, K: 48 }, {}, { preScale: true, scaleBlock: [128, 128] });
  });

  it('epilogues: residual and accumulate (f32 and f16 out), x and out strides', async () => {
    const shape = { M: 3, N: 33, K: 48 };
    for (const epilogue of ['residual', 'accumulate'] as const) {
      await run('nvfp4', shape, { epilogue }, { residual: true });
      if (g.caps.hasF16) await run('bf16', shape, { epilogue, out: 'f16', mTile: 4 }, { residual: true });
    }
    await run('nvfp4', shape, { mTile: 2 }, { xStride: 64, outStride: 40 });
    await run('f32', shape, { epilogue: 'accumulate' }, { residual: true, xStride: 52, outStride: 35 });
  });

  it('silu_mul on a dense gate_up (numRowGroups 2)', async () => {
    await run('nvfp4', { M: 3, N: 66, K: 48 }, { epilogue: 'silu_mul' }, { numRowGroups: 2 });
    await run('bf16', { M: 1, N: 14, K: 272 }, { epilogue: 'silu_mul', tuning: { rows: 4, tpk: 16, rowGroups: 2 } });
  });

  it('rmsNorm prologue: every format, M 1 and 3, both reductions, x stride, accumulate, odd split', async () => {
    const [first, second] = [reductions[0], reductions[reductions.length - 1]];
    await run('nvfp4', { M: 1, N: 33, K: 272 }, { subgroups: first, rmsNorm: true }, { norm: true });
    await run('fp8', { M: 3, N: 7, K: 48 }, { subgroups: second, rmsNorm: true, mTile: 2 }, { norm: true });
    await run('bf16', { M: 3, N: 130, K: 272 }, { rmsNorm: true, mTile: 4 }, { norm: true, xStride: 276 });
    await run('f32', { M: 3, N: 33, K: 48 }, { rmsNorm: true, epilogue: 'accumulate' }, { norm: true, residual: true });
    await run(
      'bf16',
      { M: 3, N: 7, K: 16 },
      { rmsNorm: true, subgroups: second, mTile: 16, tuning: { rows: 3, tpk: 8, rowGroups: 3 } },
      { norm: true },
    );
  });

  it('rejects mismatched shapes and variants, naming the weight', async () => {
    const host = randomHostWeight('nvfp4', 1, 8, 32);
    const weight = uploadHostWeight(g, host, 'layers.3.self_attn.q_proj');
    const kernel = await Matvec.create(g, matvecVariantFor(g, weight, { act: 'f32', out: 'f32' }));
    const small = g.device.createBuffer({ size: 16, usage: 0x80 });
    const big = g.device.createBuffer({ size: 4096, usage: 0x80 });
    expect(() => kernel.bind({ x: small, weight, out: big }, { M: 1 })).toThrow(
      /layers\.3\.self_attn\.q_proj .*x has 16 bytes, expected at least 128/,
    );
    expect(() => kernel.bind({ x: big, weight, out: small }, { M: 2 })).toThrow(
      /out has 16 bytes, expected at least 64/,
    );
    const fp8 = await Matvec.create(g, { format: 'fp8', act: 'f32', out: 'f32' });
    expect(() => fp8.bind({ x: big, weight, out: big }, { M: 1 })).toThrow(
      /weight format nvfp4, the kernel was built for fp8/,
    );
    await expect(Matvec.create(g, { format: 'bf16', act: 'f32', out: 'f32', mTile: 17 })).rejects.toThrow(/mTile 17/);
    const normed = await Matvec.create(g, matvecVariantFor(g, weight, { act: 'f32', out: 'f32', rmsNorm: true }));
    expect(() => normed.bind({ x: big, weight, out: big }, { M: 1, eps: 1e-6 })).toThrow(
      /normWeight is required by this variant/,
    );
    expect(() => normed.bind({ x: big, weight, out: big, normWeight: big }, { M: 1 })).toThrow(/rmsNorm needs eps/);
    destroyWeight(weight);
  });
});

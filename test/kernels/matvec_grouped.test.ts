// Grouped (MoE) matvec (kernels/matvec.wgsl, GROUPED) vs the f64 reference from the same packed bytes: weights
// [E, N, K] with E = 13 experts, tokens routed to 8 shuffled distinct experts each (llama.cpp test_mul_mat_id
// style), entries grouped into tiles of mTile by groupEntries (padding entries must stay untouched), odd N and K.
// Covers every format, both reductions and decodes, x tiles of 1 / 4 / 16 with several work splits, the fused
// gate_up (silu_mul, numRowGroups 2) reading token rows, the down projection reading one x row per entry, the
// residual/accumulate epilogues, preScale, and an expert stack split over several bindings by whole experts.
// Tolerance per output (matvec_check.ts): |gpu − ref| ≤ (K + 16)·2^-24·Σ_k|x_k·w_k| + 2^-23·|ref|, silu_mul
// propagating gate and up errors through the product, f16 output + 2^-11·|ref| + 2^-25; the rmsNorm prologue
// (token rows RMSNorm'ed inside the kernel) + (K/2·2^-24 + 2^-20)·Σ_k|x_k·w_k|.
import { describe, expect, it } from 'vitest';
import { groupEntries, Matvec, type MatvecVariant, matvecVariantFor, NO_ROW } from '../../kernels/matvec.js';
import type { MatvecTuning } from '../../kernels/matvec_tuning.js';
import {
  destroyWeight,
  type RandomWeightOptions,
  randomHostWeight,
  uploadHostWeight,
} from '../../kernels/reference/matvec_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { checkMatvec, randomX, shuffledExperts } from './matvec_check.js';

const gpu = await gpuOrSkip();

const E = 13;
const TOPK = 8;

interface Routed {
  tileExperts: Uint32Array;
  entryRows: Uint32Array;
  M: number;
}

/** Entries of `tokens` tokens × TOPK experts grouped into tiles; x row = token (gate_up) or entry (down). */
function route(tokens: number, mTile: number, seed: number, xRowPerEntry: boolean): Routed {
  const experts = shuffledExperts(tokens, TOPK, E, seed);
  const tokenOf = experts.map((_, i) => Math.floor(i / TOPK));
  const g = groupEntries(tokenOf, experts, mTile);
  // down projection: x holds one row per (grouped) entry, as the gate_up output wrote them
  const entryRows = xRowPerEntry ? g.entryRows.map((r, p) => (r === NO_ROW ? NO_ROW : p)) : g.entryRows;
  return { tileExperts: g.tileExperts, entryRows, M: g.entryRows.length };
}

describe.skipIf(!gpu)('matvec grouped (MoE)', () => {
  const g = gpu!;
  const reductions = g?.caps.hasSubgroups ? [true, false] : [false];

  async function run(
    format: WeightFormat,
    N: number,
    K: number,
    tokens: number,
    v: Partial<MatvecVariant> & { tuning?: MatvecTuning },
    o: RandomWeightOptions & {
      xRowPerEntry?: boolean;
      residual?: boolean;
      maxBindingBytes?: number;
      norm?: boolean;
    } = {},
  ) {
    const mTile = v.mTile ?? 1;
    const host = randomHostWeight(format, E, N, K, { seed: N * 7 + K + tokens, ...o });
    const weight = uploadHostWeight(g, host, `experts.${format}`);
    const r = route(tokens, mTile, N + K + mTile, o.xRowPerEntry ?? false);
    const numTiles = r.tileExperts.length;
    const variant = matvecVariantFor(g, weight, { act: 'f32', out: 'f32', grouped: true, numTiles, ...v, mTile });
    const kernel = await Matvec.create(g, variant);
    const numXRows = o.xRowPerEntry ? r.M : tokens;
    const nOut = kernel.outColumns(weight);
    const res = await checkMatvec(g, {
      kernel,
      host,
      weight,
      M: r.M,
      x: randomX(numXRows * K, K + tokens),
      numXRows,
      grouped: { tileExperts: r.tileExperts, entryRows: r.entryRows, mTile },
      residual: o.residual ? randomX(r.M * nOut, 3 * N) : undefined,
      maxBindingBytes: o.maxBindingBytes,
      norm: o.norm ? { weight: randomX(K, 3 * K + 2), eps: 1e-6 } : undefined,
    });
    destroyWeight(weight);
    expect(res.ok, res.message).toBe(true);
  }

  // (mTile, tuning): decode (every entry its own tile), a small-batch tile, a wide tile with an odd split
  const SPLITS: { mTile: number; tuning?: MatvecTuning }[] = [
    { mTile: 1 },
    { mTile: 4, tuning: { rows: 2, tpk: 16, rowGroups: 2 } },
    { mTile: 16, tuning: { rows: 3, tpk: 8, rowGroups: 3 } },
  ];

  for (const format of ['nvfp4', 'fp8', 'bf16', 'f32'] as WeightFormat[]) {
    it(`grouped matvec(format=${format}) E=${E} top-${TOPK}, N=33 K=144, 1..3 tokens, over splits`, async () => {
      for (const [i, split] of SPLITS.entries()) {
        const subgroups = reductions[i % reductions.length];
        await run(format, 33, 144, [1, 3, 2][i], { ...split, subgroups, f16Decode: subgroups && g.caps.hasF16 });
      }
    });
  }

  it('fused gate_up: silu_mul, numRowGroups 2, token rows (nvfp4 and bf16, N = 2·35, K = 272)', async () => {
    const [first, second] = [reductions[0], reductions[reductions.length - 1]];
    await run('nvfp4', 70, 272, 3, { epilogue: 'silu_mul', subgroups: first }, { numRowGroups: 2 });
    await run('nvfp4', 70, 272, 5, { epilogue: 'silu_mul', subgroups: second, mTile: 4 }, { numRowGroups: 2 });
    await run('bf16', 70, 48, 2, { epilogue: 'silu_mul', mTile: 16, tuning: { rows: 4, tpk: 8, rowGroups: 3 } });
    await run('fp8', 70, 48, 3, { epilogue: 'silu_mul', mTile: 2 }, { scaleBlock: [35, 48] });
  });

  it('down projection: one x row per entry (N = 33, K = 144), with preScale and f16 in/out', async () => {
    await run('nvfp4', 33, 144, 3, { mTile: 4 }, { xRowPerEntry: true });
    await run('nvfp4', 33, 144, 3, {}, { xRowPerEntry: true, preScale: true });
    await run('fp8', 33, 144, 2, { mTile: 4 }, { xRowPerEntry: true, scaleBlock: [16, 128] });
    if (g.caps.hasF16) await run('nvfp4', 33, 144, 3, { mTile: 4, act: 'f16', out: 'f16' }, { xRowPerEntry: true });
  });

  it('rmsNorm prologue on token rows: silu_mul gate_up (nvfp4, bf16) and plain fp8, 1 and 3 tokens', async () => {
    const [first, second] = [reductions[0], reductions[reductions.length - 1]];
    const norm = { norm: true };
    await run(
      'nvfp4',
      70,
      272,
      1,
      { epilogue: 'silu_mul', subgroups: first, rmsNorm: true },
      { ...norm, numRowGroups: 2 },
    );
    await run('bf16', 70, 48, 3, { epilogue: 'silu_mul', subgroups: second, rmsNorm: true, mTile: 4 }, norm);
    await run('fp8', 33, 144, 3, { rmsNorm: true }, { ...norm, scaleBlock: [16, 128] });
  });

  it('epilogues residual and accumulate on grouped entries', async () => {
    for (const epilogue of ['residual', 'accumulate'] as const)
      await run('nvfp4', 33, 48, 3, { epilogue, mTile: 4 }, { xRowPerEntry: true, residual: true });
  });

  it('an expert stack split over several bindings (whole experts per binding)', async () => {
    // one nvfp4 expert of 64 × 64 is 2048 bytes of data: 3 experts per 6 KiB binding, 5 dispatches for 13
    await run('nvfp4', 64, 64, 3, { mTile: 4 }, { maxBindingBytes: 3 * 2048 });
    await run('bf16', 64, 64, 2, { epilogue: 'silu_mul' }, { maxBindingBytes: 4 * 8192 });
  });

  it('rejects a missing routing buffer and a wrong variant', async () => {
    const host = randomHostWeight('nvfp4', E, 8, 32);
    const weight = uploadHostWeight(g, host, 'layers.0.mlp.experts.gate_up_proj');
    const dense = await Matvec.create(g, { format: 'nvfp4', act: 'f32', out: 'f32' });
    const buf = g.device.createBuffer({ size: 4096, usage: 0x80 });
    expect(() => dense.bind({ x: buf, weight, out: buf }, { M: 1 })).toThrow(
      /experts\.gate_up_proj .*13 stacked experts need the grouped variant/,
    );
    const grouped = await Matvec.create(g, { format: 'nvfp4', act: 'f32', out: 'f32', grouped: true, mTile: 4 });
    expect(() => grouped.bind({ x: buf, weight, out: buf }, { M: 5 })).toThrow(/tileExperts is required/);
    const small = g.device.createBuffer({ size: 4, usage: 0x80 });
    expect(() => grouped.bind({ x: buf, weight, out: buf, tileExperts: small, entryRows: buf }, { M: 5 })).toThrow(
      /tileExperts has 4 bytes, expected at least 8/,
    );
    destroyWeight(weight);
  });
});

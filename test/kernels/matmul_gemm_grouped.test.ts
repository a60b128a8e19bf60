// Grouped (MoE) prefill GEMM (MatmulGemm.bindGrouped) over a MoeRouting that MoeAlign computed ON THE DEVICE from
// random top-k ids, in one compute pass (align, then the GEMM dispatched indirect from the routing), vs the f64
// reference from the same packed bytes (groupedGemmRef). Experts [E, N, K] with odd N and K = 16·odd; several
// tokens; experts with no pairs; ids ≥ E (routed elsewhere: their rows stay untouched); several row tiles per
// expert; x holding tokens (gate_up: pair p reads row p / top_k) or pairs (down: row p); routeWeights; preScale;
// every format; f16 in/out; the tiled f32 path (the tensor-core kernel where the adapter has it); a smaller second batch
// through setPairs on the same bindings. Rows past the batch and unrouted rows must keep the sentinel, and nothing
// may be written past y. Error bounds: matmul_gemm_check.ts (tiled (K + 8)·2^-24·Σ|x·w|; emulated f16 operands
// add 2^-10·Σ|x·w| + K·2^-23; f16 output adds 2^-11·|ref| + 2^-24).
import { describe, expect, it } from 'vitest';
import { fromF16Array, toF16Array } from '../../core/float16.js';
import { createBufferFrom } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import {
  type GemmPath,
  MatmulGemm,
  type MatmulGemmVariant,
  subgroupMatrixUnavailable,
} from '../../kernels/matmul_gemm.js';
import { createMoeRouting, MoeAlign } from '../../kernels/moe_align.js';
import { groupedGemmRef } from '../../kernels/reference/gemm.js';
import {
  dequantHostWeight,
  type HostWeightOptions,
  randomHostWeight,
  uploadHostWeight,
} from '../../kernels/reference/gemm_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
import { randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { checkGemm, readOutput, sentinelBuffer } from './matmul_gemm_check.js';
import { randomTopk } from './moe_align_check.js';

const gpu = await gpuOrSkip();
const sgmReason = gpu ? subgroupMatrixUnavailable(gpu.caps) : 'no GPU';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

interface GroupedCase {
  format: WeightFormat;
  E: number;
  N: number;
  K: number;
  tokens: number;
  topk: number;
  /** Expert ids tokens choose from (default all E; ids ≥ E are routed elsewhere). */
  pool?: number[];
  /** true: x holds one row per token (pair p reads row p / topk); false: one row per pair. */
  xPerToken: boolean;
  weight?: HostWeightOptions;
  variant?: Partial<MatmulGemmVariant>;
  /** A second, smaller batch through setPairs on the same bindings. */
  secondTokens?: number;
  seed: number;
}

async function runGrouped(g: Gpu, c: GroupedCase, path: GemmPath = 'tiled') {
  const v: MatmulGemmVariant = {
    format: c.format,
    grouped: true,
    preScale: c.weight?.preScale,
    path,
    ...c.variant,
  };
  const kernel = await MatmulGemm.create(g, v);
  const align = await MoeAlign.create(g);
  const { E, N, K, topk } = c;
  const host = randomHostWeight(c.format, N, K, { ...c.weight, numExperts: E, seed: c.seed });
  const w = uploadHostWeight(g, 'layers.0.mlp.experts', host);
  const pool = c.pool ?? range(E);
  const ids = randomTopk(c.tokens, topk, pool, c.seed + 1);
  const maxPairs = ids.length;
  const xRowDiv = c.xPerToken ? topk : 1;
  const xRows = Math.ceil(maxPairs / xRowDiv);
  const xType = v.x ?? 'f32';
  const yType = v.y ?? 'f32';
  let x = randomArray(xRows * K, c.seed + 2, 1);
  if (xType === 'f16') x = fromF16Array(toF16Array(x));
  const xBuf = createBufferFrom(g, 'x', xType === 'f16' ? toF16Array(x) : x);
  const rand = seededRandom(c.seed + 3);
  const rw = v.routeWeights ? Float32Array.from({ length: maxPairs }, () => 0.1 + rand()) : undefined;
  const rwBuf = rw ? createBufferFrom(g, 'route_weights', rw) : undefined;
  const routing = createMoeRouting(g, 'layers.0.moe', {
    maxPairs,
    numExperts: E,
    blockM: kernel.tileM,
    gridN: [kernel.gridN(N)],
  });
  const idsBuf = createBufferFrom(g, 'topk_ids', ids);
  const alignD = align.bind(idsBuf, routing, maxPairs);
  const y = sentinelBuffer(g, 'y', maxPairs * N, yType);
  const gemmD = kernel.bindGrouped({ x: xBuf, weight: w, y, routing, routeWeights: rwBuf }, { xRowDiv, consumer: 0 });
  const dense = dequantHostWeight(host);

  const check = async (numPairs: number, what: string) => {
    await runDispatches(g, [alignD, gemmD], what);
    const used = ids.subarray(0, numPairs);
    const ref = groupedGemmRef(x, dense, used, E, N, K, xRowDiv, host.preScale, rw);
    const untouched = (i: number) => {
      const p = Math.floor(i / N);
      return p >= numPairs || ids[p] >= E;
    };
    const out = await readOutput(g, y, maxPairs * N, yType, untouched);
    const name = `${kernel.name} ${what} (E=${E},N=${N},K=${K},pairs=${numPairs},tile ${kernel.tileM}x${kernel.tileN})`;
    const r = checkGemm(
      out.values.subarray(0, numPairs * N),
      ref.y,
      ref.absY,
      { K, f16Operands: kernel.path !== 'tiled', f16Output: yType === 'f16' },
      name,
    );
    expect(r.ok, r.message).toBe(true);
    expect(out.untouchedOk, `${name}: wrote a row of a pair routed elsewhere or past the batch`).toBe(true);
    expect(out.guardOk, `${name}: write past the end of y`).toBe(true);
  };

  await check(maxPairs, 'batch 1');
  if (c.secondTokens !== undefined) {
    const numPairs = c.secondTokens * topk;
    const second = randomTopk(c.secondTokens, topk, pool, c.seed + 4);
    ids.set(second);
    g.queue.writeBuffer(idsBuf, 0, second);
    // y rows of the first batch are reset so stale results cannot pass for new ones
    g.queue.writeBuffer(y, 0, new Uint32Array(y.size / 4).fill(0x7eadbeef));
    alignD.setPairs(numPairs);
    await check(numPairs, 'batch 2');
  }
  for (const b of [xBuf, rwBuf, idsBuf, y, routing.routing, routing.counts, routing.expertOffsets]) b?.destroy();
}

describe.skipIf(!gpu)('matmul_gemm grouped over a device MoeAlign', () => {
  const g = gpu!;
  const run = (c: GroupedCase) => runGrouped(g, c);

  const FORMATS: Array<[WeightFormat, HostWeightOptions]> = [
    ['nvfp4', {}],
    ['fp8', { scaleBlock: [128, 128] }],
    ['bf16', {}],
    ['f32', {}],
  ];

  for (const [format, weight] of FORMATS) {
    it(`grouped GEMM(${format}, tiled): 13 experts top-8, 5 tokens, x per token (gate_up), tile 16x32`, async () => {
      await run({
        format,
        weight,
        E: 13,
        N: 33,
        K: 144,
        tokens: 5,
        topk: 8,
        xPerToken: true,
        variant: { tile: { m: 16, n: 32, k: 16 } },
        seed: 10,
      });
    });
  }

  it('several tiles per expert, empty experts, ids ≥ E, routeWeights, x per pair (down), default 64x64 tile', async () => {
    // 40 tokens × top-8 over 10 of 16 ids: experts 0, 3, 7 empty; ids 13..15 belong to another device
    await run({
      format: 'nvfp4',
      E: 13,
      N: 130,
      K: 48,
      tokens: 40,
      topk: 8,
      pool: [1, 2, 4, 5, 6, 8, 9, 13, 14, 15],
      xPerToken: false,
      variant: { routeWeights: true },
      seed: 20,
    });
  });

  it('nvfp4 gate_up with 2 row groups + preScale, routeWeights; a smaller second batch via setPairs', async () => {
    await run({
      format: 'nvfp4',
      E: 13,
      N: 70,
      K: 272,
      tokens: 12,
      topk: 4,
      weight: { numRowGroups: 2, preScale: true },
      xPerToken: true,
      variant: { routeWeights: true, tile: { m: 8, n: 16, k: 32 } },
      secondTokens: 3,
      seed: 30,
    });
  });

  it('fp8 per-channel, f16 activations and output', async () => {
    if (!g.caps.hasF16) return;
    await run({
      format: 'fp8',
      E: 6,
      N: 33,
      K: 80,
      tokens: 7,
      topk: 3,
      weight: { scaleBlock: [1, 80] },
      xPerToken: true,
      variant: { x: 'f16', y: 'f16', tile: { m: 16, n: 16, k: 16 } },
      seed: 40,
    });
  });

  it('rejects a routing of another blockM, expert count or grid', async () => {
    const kernel = await MatmulGemm.create(g, { format: 'bf16', grouped: true, path: 'tiled', tile: { m: 16 } });
    const host = randomHostWeight('bf16', 40, 32, { numExperts: 4 });
    const w = uploadHostWeight(g, 'layers.2.mlp.experts.down_proj', host);
    const buf = createBufferFrom(g, 'buf', new Float32Array(4096));
    const mk = (blockM: number, numExperts: number, gridN: number) =>
      createMoeRouting(g, 'r', { maxPairs: 16, numExperts, blockM, gridN: [gridN] });
    const bind = (routing: ReturnType<typeof mk>) =>
      kernel.bindGrouped({ x: buf, weight: w, y: buf, routing }, { xRowDiv: 1, consumer: 0 });
    expect(() => bind(mk(64, 4, 1))).toThrow(/routing r has blockM 64, this GEMM tiles 16 rows/);
    expect(() => bind(mk(16, 5, 1))).toThrow(/routing r has 5 experts, weight layers\.2\.mlp\.experts\.down_proj 4/);
    expect(() => bind(mk(16, 4, 3))).toThrow(/dispatches 3 workgroups along N, N 40 needs 1/);
    expect(() =>
      kernel.bindGrouped({ x: buf, weight: w, y: buf, routing: mk(16, 4, 1) }, { xRowDiv: 1, consumer: 1 }),
    ).toThrow(/consumer 1: routing r has 1 consumers/);
  });
});

// The tensor-core kernel, grouped: only where the adapter offers f16 subgroup matrices (the H100 through Dawn).
// (The emulated form of this kernel is not run grouped here: its 256-element register arrays take minutes to compile
// on a loaded lavapipe; the grouped indexing it uses — tile_expert, tile_row, x_row, store_y — is the shared code of
// matmul_gemm_common.wgsl that the tiled cases above check.)
describe.skipIf(!gpu || sgmReason !== null)('matmul_gemm grouped, subgroup matrix (tensor cores)', () => {
  it('nvfp4 and fp8 experts, 128-row tiles over several tiles per expert, routeWeights', async () => {
    for (const format of ['nvfp4', 'fp8'] as const)
      await runGrouped(
        gpu!,
        {
          format,
          E: 13,
          N: 520,
          K: 1040,
          tokens: 200,
          topk: 8,
          pool: range(12),
          xPerToken: true,
          variant: { routeWeights: true },
          secondTokens: 17,
          seed: 60,
        },
        'subgroup_matrix',
      );
  });
});

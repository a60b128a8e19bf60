// Dense prefill GEMM (kernels/matmul_gemm*.wgsl) vs the f64 reference from the SAME packed bytes, every weight
// format, odd shapes (K = 16·odd, N off the tile, M = 1 .. more than one row tile), with a guard region after y.
// Paths: tiled f32 everywhere; the subgroup-matrix kernel emulated (its tiling and indexing, on any adapter with
// shader-f16); the real tensor-core kernel only where the adapter offers f16 subgroup matrices (else skipped with
// the reason). Error bounds: test/kernels/matmul_gemm_check.ts.
import { describe, expect, it } from 'vitest';
import { fromF16Array, toF16Array } from '../../core/float16.js';
import { createBuffer, createBufferFrom } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import {
  type GemmPath,
  MatmulGemm,
  type MatmulGemmVariant,
  subgroupMatrixUnavailable,
} from '../../kernels/matmul_gemm.js';
import { gemmRef } from '../../kernels/reference/gemm.js';
import {
  dequantHostWeight,
  type HostWeightOptions,
  randomHostWeight,
  uploadHostWeight,
} from '../../kernels/reference/gemm_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
import { randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { checkGemm, readOutput, sentinelBuffer } from './matmul_gemm_check.js';

const gpu = await gpuOrSkip();
const sgmReason = gpu ? subgroupMatrixUnavailable(gpu.caps) : 'no GPU';
if (gpu && sgmReason) console.log(`subgroup-matrix GEMM tests skipped: ${sgmReason}`);

interface Case {
  name: string;
  format: WeightFormat;
  weight?: HostWeightOptions;
  shapes: Array<[number, number, number]>; // (M, N, K)
}

const ODD: Array<[number, number, number]> = [
  [1, 1, 16],
  [3, 7, 48],
  [17, 33, 272],
  [64, 130, 48],
  [130, 33, 16],
];
const EVEN_N: Array<[number, number, number]> = [
  [3, 2, 48],
  [17, 34, 272],
  [130, 130, 16],
];

const CASES: Case[] = [
  { name: 'f32', format: 'f32', shapes: ODD },
  { name: 'bf16', format: 'bf16', shapes: ODD },
  { name: 'nvfp4', format: 'nvfp4', shapes: ODD },
  {
    name: 'nvfp4 2 row groups + preScale',
    format: 'nvfp4',
    weight: { numRowGroups: 2, preScale: true },
    shapes: EVEN_N,
  },
  { name: 'fp8 per-tensor', format: 'fp8', shapes: ODD },
  { name: 'fp8 per-channel', format: 'fp8', weight: { scaleBlock: [1, 1 << 20] }, shapes: ODD },
  {
    name: 'fp8 128x128 blocks + preScale',
    format: 'fp8',
    weight: { scaleBlock: [128, 128], preScale: true },
    shapes: ODD,
  },
];

async function runCase(
  g: NonNullable<typeof gpu>,
  v: MatmulGemmVariant,
  weight: HostWeightOptions,
  [M, N, K]: [number, number, number],
  seed: number,
): Promise<void> {
  const kernel = await MatmulGemm.create(g, v);
  const opts = { ...weight, seed };
  if (opts.scaleBlock && opts.scaleBlock[1] > K) opts.scaleBlock = [opts.scaleBlock[0], K]; // per-channel: (1, K)
  const host = randomHostWeight(v.format, N, K, opts);
  const w = uploadHostWeight(g, 'w', host);
  const xType = v.x ?? 'f32';
  const yType = v.y ?? 'f32';
  let x = randomArray(M * K, seed + 7, 1);
  let xBuf: GPUBuffer;
  if (xType === 'f16') {
    const bits = toF16Array(x);
    x = fromF16Array(bits);
    xBuf = createBufferFrom(g, 'x', bits);
  } else xBuf = createBufferFrom(g, 'x', x);
  const y = sentinelBuffer(g, 'y', M * N, yType);
  await runDispatches(g, [kernel.bind({ x: xBuf, weight: w, y }, { M })]);
  const out = await readOutput(g, y, M * N, yType);
  const ref = gemmRef(x, dequantHostWeight(host), M, N, K, host.preScale);
  const name = `${kernel.name}(M=${M},N=${N},K=${K})`;
  const r = checkGemm(
    out.values,
    ref.y,
    ref.absY,
    { K, f16Operands: kernel.path !== 'tiled', f16Output: yType === 'f16' },
    name,
  );
  expect(r.ok, r.message).toBe(true);
  expect(out.guardOk, `${name}: write past the end of y`).toBe(true);
}

describe.skipIf(!gpu)('matmul_gemm dense, tiled f32', () => {
  const g = gpu!;
  for (const c of CASES) {
    it(`matmul_gemm(${c.name}, path=tiled)`, async () => {
      for (const [i, shape] of c.shapes.entries())
        await runCase(
          g,
          { format: c.format, preScale: c.weight?.preScale, path: 'tiled' },
          c.weight ?? {},
          shape,
          i + 1,
        );
    });
  }

  it('f16 activations and output, a non-default tile', async () => {
    if (!g.caps.hasF16) return;
    const v: MatmulGemmVariant = { format: 'nvfp4', x: 'f16', y: 'f16', path: 'tiled', tile: { m: 16, n: 32, k: 32 } };
    for (const shape of [
      [17, 33, 48],
      [33, 70, 272],
    ] as Array<[number, number, number]>)
      await runCase(g, v, {}, shape, 3);
  });

  it('setRows reuses the binding for another M', async () => {
    const kernel = await MatmulGemm.create(g, { format: 'bf16', path: 'tiled' });
    const [N, K] = [40, 32];
    const host = randomHostWeight('bf16', N, K, { seed: 5 });
    const x = randomArray(70 * K, 9, 1);
    const xBuf = createBufferFrom(g, 'x', x);
    const y = sentinelBuffer(g, 'y', 70 * N, 'f32');
    const d = kernel.bind({ x: xBuf, weight: uploadHostWeight(g, 'w', host), y }, { M: 70 });
    d.setRows(5);
    await runDispatches(g, [d]);
    const out = await readOutput(g, y, 70 * N, 'f32', (i) => i >= 5 * N);
    const ref = gemmRef(x, dequantHostWeight(host), 5, N, K);
    const r = checkGemm(
      out.values.subarray(0, 5 * N),
      ref.y,
      ref.absY,
      { K, f16Operands: false, f16Output: false },
      'setRows',
    );
    expect(r.ok, r.message).toBe(true);
    expect(out.untouchedOk, 'rows past M were written').toBe(true);
    expect(() => d.setRows(71)).toThrow(/x has 8960 bytes, expected at least 9088/);
  });

  it('rejects bad shapes, naming the weight', async () => {
    const kernel = await MatmulGemm.create(g, { format: 'nvfp4', path: 'tiled' });
    const host = randomHostWeight('nvfp4', 8, 32, { seed: 1 });
    const w = { ...uploadHostWeight(g, 'layers.0.q_proj', host), K: 24 };
    const buf = createBuffer(g, 'buf', 4096);
    expect(() => kernel.bind({ x: buf, weight: w, y: buf }, { M: 1 })).toThrow(
      /layers\.0\.q_proj\): \[N, K\] = \[8, 24\]: expected N ≥ 1 and K a multiple of 16/,
    );
    const bf16 = uploadHostWeight(g, 'layers.0.o_proj', randomHostWeight('bf16', 8, 32));
    expect(() => kernel.bind({ x: buf, weight: bf16, y: buf }, { M: 1 })).toThrow(
      /format bf16, this kernel was built for nvfp4/,
    );
  });
});

describe.skipIf(!gpu?.caps.hasF16)('matmul_gemm dense, subgroup-matrix kernel emulated', () => {
  const g = gpu!;
  const path: GemmPath = 'subgroup_matrix_emulated';
  it('nvfp4, 2 row groups + preScale, tile 64x128', async () => {
    const v: MatmulGemmVariant = { format: 'nvfp4', preScale: true, path };
    for (const shape of [[70, 34, 272]] as Array<[number, number, number]>)
      await runCase(g, v, { numRowGroups: 2, preScale: true }, shape, 11);
  });
  it('fp8 128x128 blocks, f16 in and out, tile 32x64, k 16', async () => {
    const v: MatmulGemmVariant = {
      format: 'fp8',
      x: 'f16',
      y: 'f16',
      path,
      subgroupTile: { sgRows: 1, sgCols: 1, k: 16 },
    };
    for (const shape of [[40, 130, 144]] as Array<[number, number, number]>)
      await runCase(g, v, { scaleBlock: [128, 128] }, shape, 12);
  });
});

describe.skipIf(!gpu || sgmReason !== null)('matmul_gemm dense, subgroup matrix (tensor cores)', () => {
  const g = gpu!;
  for (const c of CASES) {
    it(`matmul_gemm(${c.name}, path=subgroup_matrix)`, async () => {
      for (const [i, shape] of [...c.shapes, [512, 520, 1040] as [number, number, number]].entries()) {
        if (c.weight?.numRowGroups === 2 && shape[1] % 2) continue;
        await runCase(
          g,
          { format: c.format, preScale: c.weight?.preScale, path: 'subgroup_matrix' },
          c.weight ?? {},
          shape,
          i + 1,
        );
      }
    });
  }
  it('f16 in and out, tile 32x256 and 64x128 k64', async () => {
    for (const subgroupTile of [
      { sgRows: 1, sgCols: 4 },
      { sgRows: 2, sgCols: 2, k: 64 },
    ])
      for (const shape of [
        [17, 33, 48],
        [300, 1000, 528],
      ] as Array<[number, number, number]>)
        await runCase(g, { format: 'nvfp4', x: 'f16', y: 'f16', path: 'subgroup_matrix', subgroupTile }, {}, shape, 5);
  });
});

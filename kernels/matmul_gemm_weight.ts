// How a GpuWeight (kernels/weight_format.ts) meets the GEMM kernels: shape checks that name the weight, the weight
// part of the Params uniform, and the weight's bind-group entries (bindings 2..5 of matmul_gemm_common.wgsl).
import { KernelError } from '../core/errors.js';
import type { Capabilities } from './gpu/capabilities.js';
import type { BufferSlice } from './gpu/dispatch.js';
import { sliceBytes } from './gpu/dispatch.js';
import type { GpuWeight, WeightFormat } from './weight_format.js';

/** The weight fields of Params: rows_per_group, num_groups, scale_bn, scale_bk, scale_gn, scale_gk. */
export interface GemmWeightParams {
  rowsPerGroup: number;
  numGroups: number;
  scaleBn: number;
  scaleBk: number;
  scaleGn: number;
  scaleGk: number;
}

const DATA_BYTES_PER_ELEMENT: Record<WeightFormat, number> = { f32: 4, bf16: 2, nvfp4: 0.5, fp8: 1 };

function fail(label: string, message: string): never {
  throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${message}`);
}

/** Checks `w` against what the kernel variant expects and the device allows; returns its Params fields. */
export function checkGemmWeight(
  label: string,
  w: GpuWeight,
  expect: { format: WeightFormat; grouped: boolean; preScale: boolean },
  caps: Capabilities,
): GemmWeightParams {
  const where = `${label} (weight ${w.label})`;
  const { N, K, numExperts: E } = w;
  if (w.format !== expect.format) fail(where, `format ${w.format}, this kernel was built for ${expect.format}`);
  if (!(N >= 1 && K >= 16 && K % 16 === 0)) fail(where, `[N, K] = [${N}, ${K}]: expected N ≥ 1 and K a multiple of 16`);
  if (!expect.grouped && E !== 1) fail(where, `${E} experts stacked; a dense GEMM takes one (use bindGrouped)`);
  if (expect.grouped && !(E >= 1)) fail(where, `numExperts ${E} must be ≥ 1`);
  const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
    if (!slice) fail(where, `${what} is missing (format ${w.format})`);
    const have = sliceBytes(slice);
    if (have < bytes) fail(where, `${what} has ${have} bytes, expected at least ${bytes} for [${E}, ${N}, ${K}]`);
    if (have > caps.maxStorageBufferBindingSize)
      fail(where, `${what} binds ${have} bytes, the device binds at most ${caps.maxStorageBufferBindingSize}`);
  };
  need('data', w.data, E * N * K * DATA_BYTES_PER_ELEMENT[w.format]);
  if (expect.preScale) need('preScale', w.preScale, E * K * 4);
  else if (w.preScale) fail(where, 'has a preScale, this kernel was built without PRE_SCALE');
  const p: GemmWeightParams = { rowsPerGroup: N, numGroups: 1, scaleBn: N, scaleBk: K, scaleGn: 1, scaleGk: 1 };
  if (w.format === 'nvfp4') {
    const G = w.numRowGroups ?? 1;
    if (!(G >= 1 && N % G === 0)) fail(where, `numRowGroups ${G} does not divide N ${N}`);
    need('blockScales', w.blockScales, (E * N * K) / 16);
    need('globalScales', w.globalScales, E * G * 4);
    p.rowsPerGroup = N / G;
    p.numGroups = G;
  }
  if (w.format === 'fp8') {
    const [bn, bk] = w.scaleBlock ?? [N, K];
    if (!(bn >= 1 && bk >= 1)) fail(where, `scaleBlock [${bn}, ${bk}] must be ≥ 1`);
    const gn = Math.ceil(N / bn);
    const gk = Math.ceil(K / bk);
    if (gk > 1 && bk % 8 !== 0) fail(where, `scaleBlock k ${bk} must be a multiple of 8 when it splits K ${K}`);
    need('scales', w.scales, E * gn * gk * 4);
    Object.assign(p, { scaleBn: bn, scaleBk: bk, scaleGn: gn, scaleGk: gk });
  }
  return p;
}

/** Bind-group entries of the weight: data (2), block scales / fp8 scales (3), global scales (4), preScale (5). */
export function gemmWeightEntries(w: GpuWeight): Array<[number, BufferSlice]> {
  const entries: Array<[number, BufferSlice]> = [[2, w.data]];
  if (w.format === 'nvfp4') entries.push([3, w.blockScales!], [4, w.globalScales!]);
  if (w.format === 'fp8') entries.push([3, w.scales!]);
  if (w.preScale) entries.push([5, w.preScale]);
  return entries;
}

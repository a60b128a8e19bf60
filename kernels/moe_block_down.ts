// moe_block_down wrapper: the decode MoE's down projection + routing weights + sum over k + residual as one dispatch
// (see moe_block_down.wgsl). Checks shapes against the down weight [E, H, I], binds once per token count.
//   act: f32 (T·k, I) · ids u32 / weights f32 (T, k) · residual f32 (T, H) or in place · out f32 (T, H)
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, bindingResource, type Dispatch, grid, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { unitBytes } from './matvec.js';
import type { GpuWeight, WeightFormat } from './weight_format.js';

export interface MoeDownTuning {
  /** Output rows per row group (≤ tpk). */
  rows: number;
  /** Threads along the k·I/16 reduction units per row group (power of two). */
  tpk: number;
  rowGroups: number;
}

export interface MoeDownVariant {
  format: WeightFormat;
  /** out += (residual read from out) instead of out = residual + … */
  inPlace: boolean;
  tuning?: MoeDownTuning;
}

export interface MoeDownBuffers {
  act: BufferSlice;
  weight: GpuWeight;
  topkIds: BufferSlice;
  topkWeights: BufferSlice;
  out: BufferSlice;
  residual?: BufferSlice;
}

/** Why the fused kernel cannot take this down weight (the caller falls back to matvec + combine), or null. */
export function moeDownUnsupported(gpu: Gpu, w: GpuWeight): string | null {
  if (w.preScale) return 'the weight has a preScale';
  if (w.data.size > gpu.caps.maxStorageBufferBindingSize)
    return `weight data (${w.data.size} bytes) exceeds one storage binding (${gpu.caps.maxStorageBufferBindingSize})`;
  if (w.format === 'fp8') {
    const [, bk] = w.scaleBlock ?? [w.N, w.K];
    if (bk < w.K && bk % 16) return `fp8 scale block k ${bk} is not a multiple of 16`;
  }
  return null;
}

export class MoeDownCombine {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: MoeDownVariant & { tuning: MoeDownTuning },
  ) {
    this.name = `moe_block_down_${variant.format}${variant.inPlace ? '_inplace' : ''}`;
  }

  static async create(gpu: Gpu, variant: MoeDownVariant): Promise<MoeDownCombine> {
    const tuning = variant.tuning ?? { rows: 2, tpk: 32, rowGroups: 4 };
    const { rows, tpk, rowGroups } = tuning;
    const name = `moe_block_down_${variant.format}${variant.inPlace ? '_inplace' : ''}`;
    const pow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
    if (!(
      pow2(tpk) &&
      Number.isInteger(rows) &&
      rows >= 1 &&
      rows <= tpk &&
      Number.isInteger(rowGroups) &&
      rowGroups >= 1
    ))
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: tuning ${JSON.stringify(tuning)}: tpk a power of two, 1 ≤ rows ≤ tpk, rowGroups ≥ 1`,
      );
    const caps = gpu.caps;
    if (
      tpk * rowGroups > caps.maxComputeInvocationsPerWorkgroup ||
      tpk * rowGroups * rows * 4 > caps.maxComputeWorkgroupStorageSize
    )
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: workgroup ${tpk}×${rowGroups} (rows ${rows}) is too large here`,
      );
    const f = variant.format;
    const flags = {
      NVFP4: f === 'nvfp4',
      FP8: f === 'fp8',
      BF16: f === 'bf16',
      F32: f === 'f32',
      RESIDUAL: !variant.inPlace,
    };
    const snippets = { dequant: loadWgsl(new URL('./dequant.wgsl', import.meta.url)) };
    const body = composeWgsl(
      loadWgsl(new URL('./moe_block_down.wgsl', import.meta.url)),
      flags,
      snippets,
      'moe_block_down',
    );
    const pipeline = await gpu.pipelines.get({
      label: `${name}_r${rows}t${tpk}g${rowGroups}`,
      code: `const ROWS: u32 = ${rows}u;\n${body}`,
      constants: { TPK: tpk, ROW_GROUPS: rowGroups },
    });
    return new MoeDownCombine(gpu, pipeline, { ...variant, tuning });
  }

  bind(bufs: MoeDownBuffers, shape: { tokens: number; topK: number }, label = bufs.weight.label): Dispatch {
    const v = this.variant;
    const w = bufs.weight;
    const { N: H, K: I, numExperts: E } = w;
    const { tokens: T, topK: k } = shape;
    const fail = (msg: string): never => {
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label} (${this.name}): ${msg}`);
    };
    const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
      if (!slice) fail(`${what} is required by this variant`);
      else if (sliceBytes(slice) < bytes)
        fail(`${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} (T ${T}, k ${k}, H ${H}, I ${I})`);
    };
    if (w.format !== v.format) fail(`weight format ${w.format}, the kernel was built for ${v.format}`);
    if (!(H >= 1 && I >= 16 && I % 16 === 0)) fail(`[H, I] = [${H}, ${I}]: I must be a positive multiple of 16`);
    if (!(Number.isInteger(T) && T >= 1)) fail(`tokens ${T} must be an integer ≥ 1`);
    if (!(Number.isInteger(k) && k >= 1 && k <= E)) fail(`top-k ${k} must be 1..E (${E})`);
    const unsupported = moeDownUnsupported(this.gpu, w);
    if (unsupported) fail(unsupported);
    need('weight.data', w.data, E * H * (I / 16) * unitBytes(w.format));
    const G = w.numRowGroups ?? 1;
    const [bn, bk] = w.scaleBlock ?? [H, I];
    if (w.format === 'nvfp4') {
      if (H % G) fail(`numRowGroups ${G} does not divide H ${H}`);
      need('weight.blockScales', w.blockScales, (E * H * I) / 16);
      need('weight.globalScales', w.globalScales, E * G * 4);
    }
    if (w.format === 'fp8') need('weight.scales', w.scales, E * Math.ceil(H / bn) * Math.ceil(I / bk) * 4);
    need('act', bufs.act, T * k * I * 4);
    need('topkIds', bufs.topkIds, T * k * 4);
    need('topkWeights', bufs.topkWeights, T * k * 4);
    need('out', bufs.out, T * H * 4);
    if (v.inPlace && bufs.residual) fail('in place reads the residual from out; got a separate residual buffer');
    if (!v.inPlace) need('residual', bufs.residual, T * H * 4);

    const { rows, rowGroups } = v.tuning;
    const rowBlocks = Math.ceil(H / (rows * rowGroups));
    const [gx, gy] = grid(rowBlocks * T, this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const params = new Uint32Array([H, I, T, k, rowBlocks, gx, H / G, G, bn, bk, Math.ceil(H / bn), Math.ceil(I / bk)]);
    const entries: [number, BufferSlice][] = [
      [0, createUniform(this.gpu, `${label}/params`, params)],
      [1, bufs.act],
      [2, w.data],
    ];
    if (w.format === 'nvfp4') entries.push([3, w.blockScales!], [4, w.globalScales!]);
    if (w.format === 'fp8') entries.push([3, w.scales!]);
    entries.push([5, bufs.topkIds], [6, bufs.topkWeights]);
    if (!v.inPlace) entries.push([7, bufs.residual!]);
    entries.push([8, bufs.out]);
    const bindGroup = this.gpu.device.createBindGroup({
      label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: entries.map(([binding, s]) => ({ binding, resource: bindingResource(s) })),
    });
    const pipeline = this.pipeline;
    return {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(gx, gy);
      },
    };
  }
}

// vision_attention wrapper: full attention within segments (one per image frame) over the vision tower's fused qkv,
// tiled over keys with an online softmax (see vision_attention.wgsl), plus cu_seqlens for a list of grids.
//   qkv: f32 [T, 3·H·D] · cuSeqlens: u32 [segments + 1] · out: f32 [T, H·D]
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

export interface VisionAttentionVariant {
  /** D, a multiple of 4 (32 tiny, 72 for Qwen3-VL-30B). */
  headDim: number;
  /** Query rows per workgroup (32, 16 or 8); default: the largest whose tiles fit the device's workgroup memory. */
  blockQ?: number;
  /** Constant loop bounds (unrolled: q and the accumulator in registers); default: on hardware, not on lavapipe. */
  unroll?: boolean;
}

export interface VisionAttentionShape {
  tokens: number;
  heads: number;
  segments: number;
}

/** Threads per query row: the largest divisor of D/4 up to 8 (each owns D/4/TPR output vec4s). */
function threadsPerRow(headDim: number): number {
  const d4 = headDim / 4;
  for (let t = 8; t > 1; t--) if (d4 % t === 0) return t;
  return 1;
}

function workgroupBytes(blockQ: number, bk: number, headDim: number): number {
  return bk * headDim * 4 + 2 * blockQ * bk * 4; // K or V tile, scores, exponentials
}

/**
 * u32 [segments + 1] prefix sums: one segment of h·w patches per frame of each (t, h, w) grid, as transformers'
 * repeat_interleave(h·w, t).cumsum (attention never crosses frames or images).
 */
export function visionCuSeqlens(grids: readonly (readonly [number, number, number])[]): Uint32Array {
  const lens = grids.flatMap(([t, h, w]) => Array.from({ length: t }, () => h * w));
  const out = new Uint32Array(lens.length + 1);
  lens.forEach((n, i) => (out[i + 1] = out[i] + n));
  return out;
}

export function visionAttentionName(headDim: number, blockQ: number, unroll: boolean): string {
  return `vision_attention_f32_d${headDim}_bq${blockQ}${unroll ? '' : '_loops'}`;
}

export class VisionAttention {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly headDim: number,
    readonly blockQ: number,
    private readonly tpr: number,
    private readonly kpt: number,
    unroll: boolean,
  ) {
    this.name = visionAttentionName(headDim, blockQ, unroll);
  }

  static async create(gpu: Gpu, variant: VisionAttentionVariant): Promise<VisionAttention> {
    const D = variant.headDim;
    if (!(Number.isInteger(D) && D >= 4 && D % 4 === 0 && D <= 256))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `vision_attention: head dim ${D} must be a multiple of 4 ≤ 256`);
    const tpr = threadsPerRow(D);
    const kpt = Math.ceil(32 / tpr);
    const bk = kpt * tpr;
    const limit = gpu.caps.maxComputeWorkgroupStorageSize;
    const blockQ = variant.blockQ ?? [32, 16, 8].find((bq) => workgroupBytes(bq, bk, D) <= limit) ?? 8;
    const unroll = variant.unroll ?? !gpu.caps.adapter.isSoftware;
    const name = visionAttentionName(D, blockQ, unroll);
    if (![32, 16, 8].includes(blockQ) || workgroupBytes(blockQ, bk, D) > limit)
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: blockQ ${blockQ} must be 32, 16 or 8 with tiles (${workgroupBytes(blockQ, bk, D)} B) within the device's ${limit} B of workgroup memory`,
      );
    const code = [
      `const HEAD_DIM: u32 = ${D}u;`,
      `const BQ: u32 = ${blockQ}u;`,
      `const TPR: u32 = ${tpr}u;`,
      `const KPT: u32 = ${kpt}u;`,
      `const WG_SIZE: u32 = ${blockQ * tpr}u;`,
      // Only the loops that index q and acc need constant bounds; the key loops index workgroup memory.
      ...Object.entries({ n_d4: 'D4', n_dpt4: 'DPT4' }).map(
        ([fn, c]) => `fn ${fn}() -> u32 { return ${unroll ? c : `params.${c.toLowerCase()}`}; }`,
      ),
      'fn n_kpt() -> u32 { return params.kpt; }',
      'fn n_bk() -> u32 { return params.bk; }',
      loadWgsl(new URL('./vision_attention.wgsl', import.meta.url)),
    ].join('\n');
    const pipeline = await gpu.pipelines.get({ label: name, code });
    return new VisionAttention(gpu, pipeline, D, blockQ, tpr, kpt, unroll);
  }

  /** cuSeqlens must hold non-decreasing offsets from 0 to `tokens` (visionCuSeqlens); the GPU cannot check them. */
  bind(
    bufs: { qkv: BufferSlice; cuSeqlens: BufferSlice; out: BufferSlice },
    shape: VisionAttentionShape,
    label = this.name,
  ): Dispatch {
    const { tokens: T, heads: H, segments: S } = shape;
    const D = this.headDim;
    for (const [k, v] of Object.entries(shape))
      if (!(Number.isInteger(v) && v >= 1))
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${k} must be an integer ≥ 1, got ${v}`);
    const dims = `${T} tokens × ${H} heads × ${D} in ${S} segments`;
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${dims}`,
        );
    };
    need('qkv', bufs.qkv, T * 3 * H * D * 4);
    need('cuSeqlens', bufs.cuSeqlens, (S + 1) * 4);
    need('out', bufs.out, T * H * D * 4);
    const tiles = Math.ceil(T / this.blockQ) + S;
    const maxDim = this.gpu.caps.maxComputeWorkgroupsPerDimension;
    if (tiles > maxDim || H > maxDim)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: ${dims} need ${tiles} query tiles × ${H} heads, the device allows ${maxDim} per dimension`,
      );
    const params = new ArrayBuffer(32);
    new Uint32Array(params).set([H, S, 0, D / 4, D / 4 / this.tpr, this.kpt, this.kpt * this.tpr]);
    new Float32Array(params, 8, 1)[0] = Math.LOG2E / Math.sqrt(D);
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint8Array(params));
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, bufs.qkv, bufs.cuSeqlens, bufs.out], [tiles, H]);
  }
}

// vision_rope wrapper: the Qwen3-VL vision tower's 2-D rotary embedding on q and k of the fused qkv, in place (see
// vision_rope.wgsl), and the host-side pieces it needs: the per-patch (row, col) positions in merge-block order
// (transformers' rot_pos_emb) and the f32 (cos, sin) table (Qwen3VLVisionRotaryEmbedding(D/2), theta 10000).
import { KernelError } from '../core/errors.js';
import { createBufferFrom, createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

export interface VisionRopeVariant {
  /** D: the vision head dim (hidden / heads), a multiple of 4. */
  headDim: number;
  /** Default 10000 (transformers' VisionRotaryEmbedding default; the config has no field for it). */
  theta?: number;
  /** Positions must be below this (patches per image side); default 2048. */
  maxPosition?: number;
}

/** inv_freq of VisionRotaryEmbedding(dim = D/2): 1 / theta^(2j/dim), j < D/4, rounded at each f32 step as torch. */
export function visionRopeInvFreq(headDim: number, theta = 10000): Float32Array {
  const dim = headDim / 2;
  const out = new Float32Array(dim / 2);
  for (let j = 0; j < dim / 2; j++) out[j] = 1 / Math.fround(Math.fround(theta) ** Math.fround((2 * j) / dim));
  return out;
}

/** (cos, sin) [maxPosition, D/4] interleaved: the angle p · inv_freq[j] is an f32 product (torch.outer in f32). */
export function visionRopeTable(headDim: number, theta: number, maxPosition: number): Float32Array {
  const inv = visionRopeInvFreq(headDim, theta);
  const out = new Float32Array(maxPosition * inv.length * 2);
  for (let p = 0; p < maxPosition; p++)
    for (let j = 0; j < inv.length; j++) {
      const a = Math.fround(p * inv[j]);
      out[2 * (p * inv.length + j)] = Math.cos(a);
      out[2 * (p * inv.length + j) + 1] = Math.sin(a);
    }
  return out;
}

/**
 * u32 [T, 2] (row, col) per patch for images/videos of grid (t, h, w) in patches, concatenated: patches in 2-D
 * merge-block order (block row, block col, row in block, col in block), the frame's layout repeated t times —
 * exactly transformers' Qwen3VLVisionModel.rot_pos_emb.
 */
export function visionRopePositions(grids: readonly (readonly [number, number, number])[], mergeSize: number) {
  const total = grids.reduce((s, [t, h, w]) => s + t * h * w, 0);
  const out = new Uint32Array(total * 2);
  let k = 0;
  for (const [t, h, w] of grids) {
    if (h % mergeSize || w % mergeSize)
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `vision_rope: grid ${h}x${w} is not a multiple of ${mergeSize}`);
    for (let f = 0; f < t; f++)
      for (let br = 0; br < h / mergeSize; br++)
        for (let bc = 0; bc < w / mergeSize; bc++)
          for (let ir = 0; ir < mergeSize; ir++)
            for (let ic = 0; ic < mergeSize; ic++) {
              out[k++] = br * mergeSize + ir;
              out[k++] = bc * mergeSize + ic;
            }
  }
  return out;
}

export class VisionRope {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly table: GPUBuffer,
    readonly headDim: number,
    readonly maxPosition: number,
  ) {
    this.name = `vision_rope_f32_d${headDim}`;
  }

  static async create(gpu: Gpu, variant: VisionRopeVariant): Promise<VisionRope> {
    const { headDim: D, theta = 10000, maxPosition = 2048 } = variant;
    const name = `vision_rope_f32_d${D}`;
    if (!(Number.isInteger(D) && D >= 4 && D % 4 === 0))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${name}: head dim ${D} must be a positive multiple of 4`);
    if (!(Number.isInteger(maxPosition) && maxPosition >= 1) || !(theta > 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${name}: maxPosition ${maxPosition} ≥ 1, theta ${theta} > 1`);
    const code = loadWgsl(new URL('./vision_rope.wgsl', import.meta.url));
    const pipeline = await gpu.pipelines.get({ label: name, code, constants: { WG_SIZE: 256 } });
    const table = createBufferFrom(gpu, `${name}/cos_sin`, visionRopeTable(D, theta, maxPosition));
    return new VisionRope(gpu, pipeline, table, D, maxPosition);
  }

  /** qkv: f32 [tokens, 3·heads·D], rotated in place (q and k); positions: u32 [tokens, 2] (row, col). */
  bind(
    bufs: { qkv: BufferSlice; positions: BufferSlice },
    shape: { tokens: number; heads: number },
    label = this.name,
  ): Dispatch {
    const { tokens, heads } = shape;
    const D = this.headDim;
    if (!(Number.isInteger(tokens) && Number.isInteger(heads) && tokens >= 1 && heads >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: tokens ${tokens} and heads ${heads} must be ≥ 1`);
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${tokens} tokens × ${heads} heads × ${D}`,
        );
    };
    need('qkv', bufs.qkv, tokens * 3 * heads * D * 4);
    need('positions', bufs.positions, tokens * 2 * 4);
    const n = tokens * heads * D; // (q and k) × D/2 pairs
    const [gx, gy] = grid(Math.ceil(n / 256), this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const params = new Uint32Array([n, heads, D, gx, this.maxPosition, 0, 0, 0]);
    const uniform = createUniform(this.gpu, `${label}/params`, params);
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, bufs.qkv, bufs.positions, this.table], [gx, gy]);
  }

  destroy(): void {
    this.table.destroy();
  }
}

// pos_embed_interp wrapper: x += the interpolated position embedding per patch row (see pos_embed_interp.wgsl).
//   x: (rows, cols) f32 in place · table: (tableRows, cols) f32 · index: u32 (rows, 4) · weight: f32 (rows, 4)
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

export interface PosEmbedInterpShape {
  rows: number;
  cols: number;
  /** num_position_embeddings: rows of the table (indices are clamped below it). */
  tableRows: number;
}

export class PosEmbedInterp {
  readonly name = 'pos_embed_interp_f32';
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly wgSize: number,
  ) {}

  static async create(gpu: Gpu, variant: { wgSize?: number } = {}): Promise<PosEmbedInterp> {
    const wgSize = variant.wgSize ?? 256;
    const code = loadWgsl(new URL('./pos_embed_interp.wgsl', import.meta.url));
    const pipeline = await gpu.pipelines.get({ label: 'pos_embed_interp_f32', code, constants: { WG_SIZE: wgSize } });
    return new PosEmbedInterp(gpu, pipeline, wgSize);
  }

  bind(
    bufs: { x: BufferSlice; table: BufferSlice; index: BufferSlice; weight: BufferSlice },
    shape: PosEmbedInterpShape,
    label = this.name,
  ): Dispatch {
    const { rows, cols, tableRows } = shape;
    for (const [k, v] of Object.entries(shape))
      if (!(Number.isInteger(v) && v >= 1))
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${k} must be an integer ≥ 1, got ${v}`);
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for (${rows}, ${cols}) with a ${tableRows}-row table`,
        );
    };
    need('x', bufs.x, rows * cols * 4);
    need('table', bufs.table, tableRows * cols * 4);
    need('index', bufs.index, rows * 16);
    need('weight', bufs.weight, rows * 16);
    const n = rows * cols;
    const [gx, gy] = grid(Math.ceil(n / this.wgSize), this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint32Array([n, cols, tableRows, gx]));
    const slices = [uniform, bufs.x, bufs.table, bufs.index, bufs.weight];
    return simpleDispatch(this.gpu, label, this.pipeline, slices, [gx, gy]);
  }
}

// layer_norm wrapper (the vision tower's nn.LayerNorm with weight and bias): checks shapes, picks the reduction
// (subgroups where the device has them), binds once, dispatches one workgroup per row. See layer_norm.wgsl.
// x: (rows, cols) f32 · w, b: (cols) f32 · out: (rows, cols) f32 (may not alias x: other rows are still read)
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { wgslHeader } from './wgsl_types.js';

export interface LayerNormVariant {
  /** Subgroup reduction; default: when the device has subgroups. */
  subgroups?: boolean;
  wgSize?: number;
}

export interface LayerNormShape {
  rows: number;
  cols: number;
  eps: number;
}

export function layerNormName(subgroups: boolean, wgSize: number): string {
  return `layer_norm_f32${subgroups ? '_subgroup' : ''}_wg${wgSize}`;
}

export class LayerNorm {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    subgroups: boolean,
    wgSize: number,
  ) {
    this.name = layerNormName(subgroups, wgSize);
  }

  static async create(gpu: Gpu, variant: LayerNormVariant = {}): Promise<LayerNorm> {
    const subgroups = variant.subgroups ?? gpu.caps.hasSubgroups;
    const wgSize = variant.wgSize ?? Math.min(256, gpu.caps.maxComputeInvocationsPerWorkgroup);
    if (wgSize < 1 || wgSize & (wgSize - 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `layer_norm: wgSize ${wgSize} must be a power of two`);
    const header = wgslHeader(gpu.caps, { f16: false, subgroups }, {});
    const body = composeWgsl(
      loadWgsl(new URL('./layer_norm.wgsl', import.meta.url)),
      { SUBGROUPS: subgroups },
      {},
      'layer_norm',
    );
    const name = layerNormName(subgroups, wgSize);
    const pipeline = await gpu.pipelines.get({
      label: name,
      code: `${header}\n${body}`,
      constants: { WG_SIZE: wgSize },
    });
    return new LayerNorm(gpu, pipeline, subgroups, wgSize);
  }

  /** Binds buffers once; the returned dispatch can be recorded into every pass. */
  bind(
    bufs: { x: BufferSlice; w: BufferSlice; b: BufferSlice; out: BufferSlice },
    shape: LayerNormShape,
    label = this.name,
  ): Dispatch {
    const { rows, cols, eps } = shape;
    if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 1 && cols >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: rows ${rows} and cols ${cols} must be integers ≥ 1`);
    if (!(eps >= 0)) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: eps ${eps} must be ≥ 0`);
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for (${rows}, ${cols})`,
        );
    };
    need('x', bufs.x, rows * cols * 4);
    need('w', bufs.w, cols * 4);
    need('b', bufs.b, cols * 4);
    need('out', bufs.out, rows * cols * 4);
    const [gx, gy] = grid(rows, this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 2).set([rows, cols]);
    new Float32Array(params, 8, 1)[0] = eps;
    new Uint32Array(params, 12, 1)[0] = gx;
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint8Array(params));
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, bufs.x, bufs.w, bufs.b, bufs.out], [gx, gy]);
  }
}

// rms_norm wrapper: checks shapes, picks the variant (types, subgroup reduction), binds once, dispatches one
// workgroup per row. See rms_norm.wgsl for the math.
// x: (rows, cols) src · w: (cols) f32 · out: (rows, cols) dst
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

export interface RmsNormVariant {
  src: FloatType;
  dst: FloatType;
  /** Subgroup reduction; default: when the device has subgroups. */
  subgroups?: boolean;
  wgSize?: number;
}

export interface RmsNormShape {
  rows: number;
  cols: number;
  eps: number;
}

export function rmsNormName(v: RmsNormVariant, subgroups: boolean): string {
  return `rms_norm_${v.src}_${v.dst}${subgroups ? '_subgroup' : ''}`;
}

export class RmsNorm {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly variant: Required<RmsNormVariant>,
  ) {
    this.name = rmsNormName(variant, variant.subgroups);
  }

  static async create(gpu: Gpu, variant: RmsNormVariant): Promise<RmsNorm> {
    const subgroups = variant.subgroups ?? gpu.caps.hasSubgroups;
    const wgSize = variant.wgSize ?? Math.min(256, gpu.caps.maxComputeInvocationsPerWorkgroup);
    if (wgSize & (wgSize - 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `rms_norm: wgSize ${wgSize} must be a power of two`);
    const full = { ...variant, subgroups, wgSize };
    const f16 = variant.src === 'f16' || variant.dst === 'f16';
    const header = wgslHeader(gpu.caps, { f16, subgroups }, { src_t: variant.src, dst_t: variant.dst });
    const body = composeWgsl(
      loadWgsl(new URL('./rms_norm.wgsl', import.meta.url)),
      { SUBGROUPS: subgroups },
      {},
      'rms_norm',
    );
    const pipeline = await gpu.pipelines.get({
      label: rmsNormName(full, subgroups),
      code: `${header}\n${body}`,
      constants: { WG_SIZE: wgSize },
    });
    return new RmsNorm(gpu, pipeline, full);
  }

  /** Binds buffers once; the returned dispatch can be recorded into every step's pass. */
  bind(bufs: { x: BufferSlice; w: BufferSlice; out: BufferSlice }, shape: RmsNormShape, label = this.name): Dispatch {
    const { rows, cols, eps } = shape;
    const v = this.variant;
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes) {
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for (${rows}, ${cols})`,
        );
      }
    };
    if (!(rows >= 1 && cols >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: rows ${rows} and cols ${cols} must be ≥ 1`);
    need('x', bufs.x, rows * cols * bytesPerElement[v.src]);
    need('w', bufs.w, cols * 4);
    need('out', bufs.out, rows * cols * bytesPerElement[v.dst]);
    const [gx, gy] = grid(rows, this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 2).set([rows, cols]);
    new Float32Array(params, 8, 1)[0] = eps;
    new Uint32Array(params, 12, 1)[0] = gx;
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint8Array(params));
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, bufs.x, bufs.w, bufs.out], [gx, gy]);
  }
}

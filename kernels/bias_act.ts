// bias_act wrapper: bias add and/or GELU after a matmul, in place or added to the residual stream (see
// bias_act.wgsl). The vision tower's qkv/proj/fc biases, the MLP's tanh-GELU and the patch merger's exact GELU.
//   in place:  x: (rows, cols) f32 ← act(x + b)
//   residual:  h: (rows, cols) f32 += act(x + b), x read only
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

/** gelu_tanh: torch gelu(approximate='tanh') (hidden_act gelu_pytorch_tanh); gelu_erf: nn.GELU() (exact, erf). */
export type Activation = 'none' | 'gelu_tanh' | 'gelu_erf';

export interface BiasActVariant {
  act: Activation;
  /** Adds b[c] before the activation. */
  bias: boolean;
  /** Adds the result into h instead of writing x back. */
  residual?: boolean;
  wgSize?: number;
}

export function biasActName(v: BiasActVariant): string {
  const parts = ['bias_act', v.bias ? 'bias' : '', v.act === 'none' ? '' : v.act, v.residual ? 'residual' : '', 'f32'];
  return parts.filter(Boolean).join('_');
}

export class BiasAct {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: Required<BiasActVariant>,
  ) {
    this.name = biasActName(variant);
  }

  static async create(gpu: Gpu, variant: BiasActVariant): Promise<BiasAct> {
    const full: Required<BiasActVariant> = { residual: false, wgSize: 256, ...variant };
    const name = biasActName(full);
    if (!full.bias && full.act === 'none' && !full.residual)
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${name}: no bias, no activation, no residual: nothing to do`);
    const flags = {
      BIAS: full.bias,
      GELU_TANH: full.act === 'gelu_tanh',
      GELU_ERF: full.act === 'gelu_erf',
      RESIDUAL: full.residual,
    };
    const code = composeWgsl(loadWgsl(new URL('./bias_act.wgsl', import.meta.url)), flags, {}, 'bias_act');
    const pipeline = await gpu.pipelines.get({ label: name, code, constants: { WG_SIZE: full.wgSize } });
    return new BiasAct(gpu, pipeline, full);
  }

  /** `b` is required with the bias variant, `h` with the residual one. */
  bind(
    bufs: { x: BufferSlice; b?: BufferSlice; h?: BufferSlice },
    shape: { rows: number; cols: number },
    label = this.name,
  ): Dispatch {
    const { rows, cols } = shape;
    const v = this.variant;
    if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 1 && cols >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: rows ${rows} and cols ${cols} must be integers ≥ 1`);
    const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
      if (!slice) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: needs a ${what} buffer`);
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for (${rows}, ${cols})`,
        );
      return slice;
    };
    const n = rows * cols;
    const slices: BufferSlice[] = [need('x', bufs.x, n * 4)];
    if (v.residual) slices.push(need('h', bufs.h, n * 4));
    else if (bufs.h) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: got h, but this variant is in place`);
    if (v.bias) slices.push(need('b', bufs.b, cols * 4));
    else if (bufs.b) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: got b, but this variant has no bias`);
    const [gx, gy] = grid(Math.ceil(n / v.wgSize), this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint32Array([n, cols, gx, 0]));
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, ...slices], [gx, gy]);
  }
}

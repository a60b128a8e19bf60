// elementwise wrappers: residual add, silu·mul of a fused gate_up, the MoE combine of expert outputs with routing
// weights, and f32↔f16 casts. Each checks sizes, binds once and dispatches one invocation per output element.
// See elementwise.wgsl for the math and layouts.
//   ResidualAdd  h: (n) f32 += y: (n) src
//   SiluMul      gateUp: (rows, 2I) src → out: (rows, I) dst
//   MoeCombine   out: (T, H) f32 = residual (T, H) f32 + Σ_j weights[t, j] · expertOut[t·k + j] (T·k, H) src
//   Cast         x: (n) src → out: (n) dst
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl, type Flags } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

type ElementwiseOp = 'add' | 'silu_mul' | 'combine' | 'cast';

const OP_FLAGS: Record<ElementwiseOp, string> = { add: 'ADD', silu_mul: 'SILU_MUL', combine: 'COMBINE', cast: 'CAST' };

interface Built {
  gpu: Gpu;
  pipeline: GPUComputePipeline;
  name: string;
  wgSize: number;
}

async function build(
  gpu: Gpu,
  op: ElementwiseOp,
  name: string,
  types: { src: FloatType; dst: FloatType },
  extraFlags: Flags = {},
  wgSize = 256,
): Promise<Built> {
  const f16 = types.src === 'f16' || types.dst === 'f16';
  const header = wgslHeader(gpu.caps, { f16, subgroups: false }, { src_t: types.src, dst_t: types.dst });
  const flags: Flags = { ADD: false, SILU_MUL: false, COMBINE: false, CAST: false, INPLACE: false, ...extraFlags };
  flags[OP_FLAGS[op]] = true;
  const body = composeWgsl(loadWgsl(new URL('./elementwise.wgsl', import.meta.url)), flags, {}, 'elementwise');
  const pipeline = await gpu.pipelines.get({ label: name, code: `${header}\n${body}`, constants: { WG_SIZE: wgSize } });
  return { gpu, pipeline, name, wgSize };
}

function checkSlice(label: string, what: string, slice: BufferSlice, bytes: number, shape: string): void {
  if (sliceBytes(slice) < bytes)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${shape}`,
    );
}

function checkPositive(label: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims))
    if (!(Number.isInteger(v) && v >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${name} must be an integer ≥ 1, got ${v}`);
}

/** One invocation per output element over a 2-D grid; params = (n, cols, k, grid_x). */
function dispatchElements(b: Built, label: string, slices: BufferSlice[], n: number, cols = 0, k = 0): Dispatch {
  const [gx, gy] = grid(Math.ceil(n / b.wgSize), b.gpu.caps.maxComputeWorkgroupsPerDimension);
  const uniform = createUniform(b.gpu, `${label}/params`, new Uint32Array([n, cols, k, gx]));
  return simpleDispatch(b.gpu, label, b.pipeline, [uniform, ...slices], [gx, gy]);
}

/** h += y over n elements: the residual stream update (h f32, y f32 or f16). */
export class ResidualAdd {
  private constructor(
    private readonly b: Built,
    readonly src: FloatType,
  ) {}

  get name(): string {
    return this.b.name;
  }

  static async create(gpu: Gpu, variant: { src: FloatType }): Promise<ResidualAdd> {
    const name = `residual_add_${variant.src}_f32`;
    return new ResidualAdd(await build(gpu, 'add', name, { src: variant.src, dst: 'f32' }), variant.src);
  }

  bind(bufs: { h: BufferSlice; y: BufferSlice }, n: number, label = this.name): Dispatch {
    checkPositive(label, { n });
    checkSlice(label, 'h', bufs.h, n * 4, `n = ${n}`);
    checkSlice(label, 'y', bufs.y, n * bytesPerElement[this.src], `n = ${n}`);
    return dispatchElements(this.b, label, [bufs.h, bufs.y], n);
  }
}

/** out[r, i] = silu(gateUp[r, i]) · gateUp[r, I + i]: the SwiGLU between a fused gate_up and down projection. */
export class SiluMul {
  private constructor(
    private readonly b: Built,
    private readonly types: { src: FloatType; dst: FloatType },
  ) {}

  get name(): string {
    return this.b.name;
  }

  static async create(gpu: Gpu, types: { src: FloatType; dst: FloatType }): Promise<SiluMul> {
    return new SiluMul(await build(gpu, 'silu_mul', `silu_mul_${types.src}_${types.dst}`, types), types);
  }

  /** `intermediate` is I (gateUp has 2I columns). */
  bind(
    bufs: { gateUp: BufferSlice; out: BufferSlice },
    shape: { rows: number; intermediate: number },
    label = this.name,
  ): Dispatch {
    const { rows, intermediate } = shape;
    checkPositive(label, { rows, intermediate });
    const dims = `(${rows}, ${intermediate})`;
    checkSlice(label, 'gateUp', bufs.gateUp, rows * 2 * intermediate * bytesPerElement[this.types.src], dims);
    checkSlice(label, 'out', bufs.out, rows * intermediate * bytesPerElement[this.types.dst], dims);
    return dispatchElements(this.b, label, [bufs.gateUp, bufs.out], rows * intermediate, intermediate);
  }
}

export interface MoeCombineVariant {
  /** Element type of the expert outputs. */
  src: FloatType;
  /** out is the residual (read_write); otherwise residual and out are separate buffers. */
  inPlace: boolean;
}

/**
 * The MoE block's output added to the residual stream: out[t] = residual[t] + Σ_j weights[t, j] · expertOut[t·k + j].
 * Pairs are t-major (pair p = t·k + j, as the router writes topk_ids/topk_weights), so expertOut row p belongs to
 * token p / k. Each output element is summed by one invocation in rank order (deterministic, no atomics).
 */
export class MoeCombine {
  private constructor(
    private readonly b: Built,
    private readonly variant: MoeCombineVariant,
  ) {}

  get name(): string {
    return this.b.name;
  }

  static async create(gpu: Gpu, variant: MoeCombineVariant): Promise<MoeCombine> {
    const name = `moe_combine_${variant.src}_f32${variant.inPlace ? '_inplace' : ''}`;
    const built = await build(gpu, 'combine', name, { src: variant.src, dst: 'f32' }, { INPLACE: variant.inPlace });
    return new MoeCombine(built, variant);
  }

  /** In place: `out` holds the residual and receives the sum; otherwise `residual` is required and read only. */
  bind(
    bufs: { weights: BufferSlice; expertOut: BufferSlice; out: BufferSlice; residual?: BufferSlice },
    shape: { tokens: number; hidden: number; topK: number },
    label = this.name,
  ): Dispatch {
    const { tokens, hidden, topK } = shape;
    checkPositive(label, { tokens, hidden, topK });
    const dims = `(T ${tokens}, H ${hidden}, k ${topK})`;
    checkSlice(label, 'weights', bufs.weights, tokens * topK * 4, dims);
    checkSlice(label, 'expertOut', bufs.expertOut, tokens * topK * hidden * bytesPerElement[this.variant.src], dims);
    checkSlice(label, 'out', bufs.out, tokens * hidden * 4, dims);
    const slices = [bufs.weights, bufs.expertOut];
    if (this.variant.inPlace) {
      if (bufs.residual)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: in-place combine reads the residual from out; got a separate residual buffer`,
        );
      slices.push(bufs.out);
    } else {
      if (!bufs.residual)
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: out-of-place combine needs a residual buffer`);
      checkSlice(label, 'residual', bufs.residual, tokens * hidden * 4, dims);
      slices.push(bufs.residual, bufs.out);
    }
    return dispatchElements(this.b, label, slices, tokens * hidden, hidden, topK);
  }
}

/** out = dst(x) elementwise (f32 → f16 rounds to nearest even; f16 → f32 is exact). */
export class Cast {
  private constructor(
    private readonly b: Built,
    private readonly types: { src: FloatType; dst: FloatType },
  ) {}

  get name(): string {
    return this.b.name;
  }

  static async create(gpu: Gpu, types: { src: FloatType; dst: FloatType }): Promise<Cast> {
    return new Cast(await build(gpu, 'cast', `cast_${types.src}_${types.dst}`, types), types);
  }

  bind(bufs: { x: BufferSlice; out: BufferSlice }, n: number, label = this.name): Dispatch {
    checkPositive(label, { n });
    checkSlice(label, 'x', bufs.x, n * bytesPerElement[this.types.src], `n = ${n}`);
    checkSlice(label, 'out', bufs.out, n * bytesPerElement[this.types.dst], `n = ${n}`);
    return dispatchElements(this.b, label, [bufs.x, bufs.out], n);
  }
}

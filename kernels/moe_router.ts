// moe_router wrapper: the MoE gate (router logits → softmax in f32 → top-k → renormalized weights) in one dispatch,
// one workgroup per token, no readback. From x and the router weight (FROM_X: the decode path, saving the logits
// matvec and its dispatch) or from logits another kernel wrote. See moe_router.wgsl for the math.
//   x: (T, xStride) act · router weight [E, H] (bf16 or f32 GpuWeight, numExperts 1) | logits: (T, E) f32
//   → topkIds: u32 (T, k), topkWeights: f32 (T, k), rank order; pair p = t·k + j as MoeAlign / MoeCombine expect.
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, bindingResource, type Dispatch, grid, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import type { GpuWeight } from './weight_format.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

export interface MoeRouterVariant {
  /** 'x': logits computed here from x and the router weight; 'logits': read (T, E) f32 logits. */
  input: 'x' | 'logits';
  /** Router weight format (FROM_X): 'bf16' as checkpoints ship it, or 'f32'. Default bf16. */
  weightFormat?: 'bf16' | 'f32';
  /** x element type (FROM_X), default f32. */
  act?: FloatType;
  /** norm_topk_prob: divide the k selected probabilities by their sum. */
  normTopk: boolean;
  /** Invocations per workgroup (power of two ≥ 32); default 256 from x (more loads in flight), 128 from logits. */
  wgSize?: number;
  /** Threads per router-weight row (FROM_X; power of two ≤ wgSize), default 32. */
  rowThreads?: number;
}

export interface MoeRouterBuffers {
  x?: BufferSlice;
  weight?: GpuWeight;
  logits?: BufferSlice;
  topkIds: BufferSlice;
  topkWeights: BufferSlice;
}

export interface MoeRouterShape {
  tokens: number;
  topK: number;
  /** Experts (input 'logits'; with 'x' it is weight.N). */
  numExperts?: number;
  /** Elements between rows of x (default H; a multiple of 4). */
  xStride?: number;
  /** Tokens the buffers hold, the most setTokens accepts (default `tokens`). */
  maxTokens?: number;
}

/** A bound router; `setTokens` changes T for the next submission (one small uniform write). */
export interface MoeRouterDispatch extends Dispatch {
  setTokens(tokens: number): void;
}

/** Largest expert count and top-k the kernel's workgroup arrays hold. */
export const ROUTER_MAX_EXPERTS = 512;
export const ROUTER_MAX_TOPK = 32;

export function moeRouterName(v: MoeRouterVariant): string {
  const parts = ['moe_router'];
  if (v.input === 'x') parts.push('x', v.act ?? 'f32', v.weightFormat ?? 'bf16');
  else parts.push('logits');
  if (v.normTopk) parts.push('norm');
  return parts.join('_');
}

export class MoeRouter {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: MoeRouterVariant,
  ) {
    this.name = moeRouterName(variant);
  }

  static async create(gpu: Gpu, variant: MoeRouterVariant): Promise<MoeRouter> {
    const name = moeRouterName(variant);
    const caps = gpu.caps;
    const wgSize =
      variant.wgSize ?? Math.min(variant.input === 'x' ? 256 : 128, caps.maxComputeInvocationsPerWorkgroup);
    const rowThreads = variant.rowThreads ?? Math.min(32, wgSize);
    const pow2 = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
    if (!(pow2(wgSize) && wgSize >= ROUTER_MAX_TOPK && wgSize <= caps.maxComputeInvocationsPerWorkgroup))
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: wgSize ${wgSize} must be a power of two in ${ROUTER_MAX_TOPK}..${caps.maxComputeInvocationsPerWorkgroup}`,
      );
    if (!(pow2(rowThreads) && rowThreads <= wgSize))
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: rowThreads ${rowThreads} must be a power of two ≤ ${wgSize}`,
      );
    const act = variant.act ?? 'f32';
    const fromX = variant.input === 'x';
    const header = wgslHeader(caps, { f16: fromX && act === 'f16', subgroups: false }, { act_t: act });
    const flags = {
      FROM_X: fromX,
      W_BF16: (variant.weightFormat ?? 'bf16') === 'bf16',
      NORM: variant.normTopk,
    };
    const body = composeWgsl(loadWgsl(new URL('./moe_router.wgsl', import.meta.url)), flags, {}, 'moe_router');
    const pipeline = await gpu.pipelines.get({
      label: name,
      code: `${header}\n${body}`,
      constants: { WG_SIZE: wgSize, ROW_THREADS: rowThreads, MAX_E: ROUTER_MAX_EXPERTS, MAX_K: ROUTER_MAX_TOPK },
    });
    return new MoeRouter(gpu, pipeline, { ...variant, wgSize, rowThreads });
  }

  bind(bufs: MoeRouterBuffers, shape: MoeRouterShape, label = bufs.weight?.label ?? this.name): MoeRouterDispatch {
    const v = this.variant;
    const fail = (msg: string): never => {
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label} (${this.name}): ${msg}`);
    };
    const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
      if (!slice) fail(`${what} is required by this variant`);
      else if (sliceBytes(slice) < bytes) fail(`${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes}`);
    };
    const checkExperts = (E: number) => {
      if (!(Number.isInteger(E) && E >= 1 && E <= ROUTER_MAX_EXPERTS)) fail(`${E} experts: 1..${ROUTER_MAX_EXPERTS}`);
    };
    const { topK } = shape;
    const maxTokens = shape.maxTokens ?? shape.tokens;
    let E: number;
    let H = 0;
    let xStride = 0;
    if (v.input === 'x') {
      const w = bufs.weight;
      if (!w) return fail('the router weight is required by this variant');
      const fmt = v.weightFormat ?? 'bf16';
      if (w.format !== fmt) fail(`router weight ${w.label} is ${w.format}, the kernel was built for ${fmt}`);
      if (w.numExperts !== 1) fail(`router weight ${w.label} must be one [E, H] matrix, got ${w.numExperts} stacked`);
      if (w.preScale) fail(`router weight ${w.label} has a preScale, which the router does not apply`);
      [E, H] = [w.N, w.K];
      checkExperts(E);
      if (!(H >= 16 && H % 16 === 0)) fail(`hidden size ${H} must be a positive multiple of 16`);
      xStride = shape.xStride ?? H;
      if (xStride % 4 || xStride < H) fail(`xStride ${xStride} must be a multiple of 4 and ≥ H ${H}`);
      need('x', bufs.x, ((maxTokens - 1) * xStride + H) * bytesPerElement[v.act ?? 'f32']);
      need('weight.data', w.data, E * H * (fmt === 'bf16' ? 2 : 4));
    } else {
      E = shape.numExperts ?? fail('numExperts is required with input logits');
      checkExperts(E);
      need('logits', bufs.logits, maxTokens * E * 4);
    }
    if (!(Number.isInteger(topK) && topK >= 1 && topK <= Math.min(E, ROUTER_MAX_TOPK)))
      fail(`top-k ${topK} must be 1..min(E ${E}, ${ROUTER_MAX_TOPK})`);
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) fail(`maxTokens ${maxTokens} must be an integer ≥ 1`);
    need('topkIds', bufs.topkIds, maxTokens * topK * 4);
    need('topkWeights', bufs.topkWeights, maxTokens * topK * 4);

    const maxPerDim = this.gpu.caps.maxComputeWorkgroupsPerDimension;
    const paramsFor = (T: number) => {
      if (!(Number.isInteger(T) && T >= 1 && T <= maxTokens)) fail(`${T} tokens, the buffers hold 1..${maxTokens}`);
      const [gx, gy] = grid(T, maxPerDim);
      return { gx, gy, params: new Uint32Array([T, E, H, topK, xStride, gx, 0, 0]) };
    };
    let cur = paramsFor(shape.tokens);
    const uniform = createUniform(this.gpu, `${label}/params`, cur.params);
    const inputs: [number, BufferSlice][] =
      v.input === 'x'
        ? [
            [1, bufs.x!],
            [2, bufs.weight!.data],
          ]
        : [[1, bufs.logits!]];
    const entries: [number, BufferSlice][] = [[0, uniform], ...inputs, [3, bufs.topkIds], [4, bufs.topkWeights]];
    const bindGroup = this.gpu.device.createBindGroup({
      label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: entries.map(([binding, s]) => ({ binding, resource: bindingResource(s) })),
    });
    const pipeline = this.pipeline;
    const queue = this.gpu.queue;
    return {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(cur.gx, cur.gy);
      },
      setTokens(T) {
        cur = paramsFor(T);
        queue.writeBuffer(uniform, 0, cur.params);
      },
    };
  }
}

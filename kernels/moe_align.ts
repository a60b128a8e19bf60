// moe_align wrapper: the routing buffers the grouped GEMM reads (sized once for the largest batch) and the
// one-workgroup kernel that fills them from the router's top-k expert ids. See moe_align.wgsl and
// moe_align_layout.ts for the layout; kernels/reference/gemm.ts moeAlignRef for the CPU version.
import { KernelError } from '../core/errors.js';
import { createBuffer, createUniform, STORAGE } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, makeBindGroup, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { moeAlignCapacity } from './moe_align_layout.js';

const INDIRECT = 0x0100;
const MAX_CONSUMERS = 8;

/** The alignment's output: written by MoeAlign, read by MatmulGemm.bindGrouped. */
export interface MoeRouting {
  label: string;
  maxPairs: number; // the most (token, expert) pairs one step may route
  numExperts: number;
  blockM: number; // row tile of the grouped GEMMs that read it (MatmulGemm.tileM)
  maxPaddedRows: number;
  maxTiles: number;
  gridN: number[]; // workgroups along N of each consumer GEMM (MatmulGemm.gridN(N)); args at byte 12·i
  routing: GPUBuffer; // u32 [maxPaddedRows + maxTiles]
  expertOffsets: GPUBuffer; // u32 [E + 1]
  counts: GPUBuffer; // u32 [E]
  dispatchArgs: GPUBuffer; // u32 [consumers, 3], INDIRECT usage
}

export interface MoeRoutingOptions {
  maxPairs: number;
  numExperts: number;
  blockM: number;
  gridN: number[];
}

/** Allocates the routing buffers for up to `maxPairs` pairs (e.g. max batched tokens × top-k). */
export function createMoeRouting(gpu: Gpu, label: string, o: MoeRoutingOptions): MoeRouting {
  const { maxPairs, numExperts, blockM, gridN } = o;
  if (!(maxPairs >= 1 && numExperts >= 1 && blockM >= 1))
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: maxPairs ${maxPairs}, numExperts ${numExperts} and blockM ${blockM} must be ≥ 1`,
    );
  if (gridN.length < 1 || gridN.length > MAX_CONSUMERS || !gridN.every((g) => Number.isInteger(g) && g >= 1))
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: gridN must list 1..${MAX_CONSUMERS} workgroup counts ≥ 1, got [${gridN.join(', ')}]`,
    );
  const { maxPaddedRows, maxTiles } = moeAlignCapacity(maxPairs, numExperts, blockM);
  const limit = gpu.caps.maxComputeWorkgroupsPerDimension;
  if (maxTiles > limit)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: up to ${maxTiles} row tiles of ${blockM} for ${maxPairs} pairs, the device dispatches at most ${limit} per dimension`,
    );
  return {
    label,
    maxPairs,
    numExperts,
    blockM,
    maxPaddedRows,
    maxTiles,
    gridN: [...gridN],
    routing: createBuffer(gpu, `${label}/routing`, (maxPaddedRows + maxTiles) * 4),
    expertOffsets: createBuffer(gpu, `${label}/expert_offsets`, (numExperts + 1) * 4),
    counts: createBuffer(gpu, `${label}/counts`, numExperts * 4),
    dispatchArgs: createBuffer(gpu, `${label}/dispatch_args`, gridN.length * 12, STORAGE | INDIRECT),
  };
}

/** A bound alignment; `setPairs` changes the number of pairs for the next submission (one small uniform write). */
export interface MoeAlignDispatch extends Dispatch {
  setPairs(numPairs: number): void;
}

export class MoeAlign {
  readonly name = 'moe_align';
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly wgSize: number,
    private readonly maxExperts: number,
  ) {}

  static async create(gpu: Gpu, opts: { wgSize?: number; maxExperts?: number } = {}): Promise<MoeAlign> {
    const wgSize = opts.wgSize ?? Math.min(256, gpu.caps.maxComputeInvocationsPerWorkgroup);
    const maxExperts = opts.maxExperts ?? 512;
    const pipeline = await gpu.pipelines.get({
      label: 'moe_align',
      code: loadWgsl(new URL('./moe_align.wgsl', import.meta.url)),
      constants: { WG_SIZE: wgSize, MAX_EXPERTS: maxExperts },
    });
    return new MoeAlign(gpu, pipeline, wgSize, maxExperts);
  }

  /** topkIds: u32 [numPairs] (≥ maxPairs entries are never read past numPairs). */
  bind(topkIds: BufferSlice, out: MoeRouting, numPairs: number, label = `${out.label}/moe_align`): MoeAlignDispatch {
    const E = out.numExperts;
    if (E > this.maxExperts)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: ${E} experts, this moe_align was built for at most ${this.maxExperts}`,
      );
    if (sliceBytes(topkIds) < out.maxPairs * 4)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: topk_ids has ${sliceBytes(topkIds)} bytes, expected at least ${out.maxPairs * 4} for ${out.maxPairs} pairs`,
      );
    const params = new Uint32Array(16);
    params.set([numPairs, E, out.blockM, out.maxPaddedRows, out.maxTiles, out.gridN.length, 0, 0]);
    params.set(out.gridN, 8);
    const check = (n: number) => {
      if (!(Number.isInteger(n) && n >= 0 && n <= out.maxPairs))
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${n} pairs, the routing holds 0..${out.maxPairs}`);
    };
    check(numPairs);
    const uniform = createUniform(this.gpu, `${label}/params`, params);
    const scratch = createBuffer(this.gpu, `${label}/scratch`, this.wgSize * E * 4);
    const bindGroup = makeBindGroup(this.gpu, label, this.pipeline, [
      uniform,
      topkIds,
      out.routing,
      out.expertOffsets,
      out.counts,
      scratch,
      out.dispatchArgs,
    ]);
    const pipeline = this.pipeline;
    const queue = this.gpu.queue;
    return {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(1);
      },
      setPairs(n) {
        check(n);
        queue.writeBuffer(uniform, 0, new Uint32Array([n]));
      },
    };
  }
}

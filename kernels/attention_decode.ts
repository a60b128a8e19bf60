// attention_decode wrapper: paged decode attention (one query token per sequence), split-K over partitions of the
// context plus a reduce dispatch when a step has more than one partition (see attention_decode*.wgsl).
import { KernelError } from '../core/errors.js';
import { type AttentionStep, MAX_PARTITION_SIZE } from './attention_step.js';
import { createBuffer, createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, makeBindGroup, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import {
  checkHeadDim,
  checkKvScales,
  composeKvKernel,
  KV_BLOCK_SIZE,
  type KvCache,
  type KvDtype,
  type KvScales,
  kvCacheBytes,
  kvDeclarations,
  kvTag,
} from './kv_cache.js';

export interface AttentionVariant {
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

export interface AttentionDecodeVariant extends AttentionVariant {
  /** Threads per workgroup: a power of two in [D/8, 256] (default 64). */
  wgSize?: number;
}

export interface AttentionDecodeBuffers {
  /** f32 query rows, one per sequence (see AttentionLayout). */
  q: BufferSlice;
  /** u32 [maxSeqs, maxBlocksPerSeq]: row s lists sequence s's cache blocks in order. */
  blockTables: BufferSlice;
  /** u32 [maxSeqs]: tokens in the cache for each sequence, the new one included (0: padding, output 0). */
  contextLens: BufferSlice;
  cache: KvCache;
  /** f32 [maxSeqs, Hq, D]. */
  out: BufferSlice;
}

/** Where the q heads sit (elements, multiples of 4): default rows of Hq·D from 0; a fused qkv row works. */
export interface AttentionLayout extends Partial<KvScales> {
  qTokenStride?: number;
  qOffset?: number;
  /** Entries per block-table row; default ceil(step.maxContextLen / 16). */
  maxBlocksPerSeq?: number;
}

export function checkAttentionVariant(name: string, v: AttentionVariant): void {
  checkHeadDim(name, v.headDim);
  const { numQHeads: hq, numKvHeads: hkv } = v;
  if (!(Number.isInteger(hq) && Number.isInteger(hkv) && hkv >= 1 && hq >= hkv && hq % hkv === 0))
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${name}: ${hq} query heads over ${hkv} kv heads; expected a whole number of query heads per kv head`,
    );
}

/** Checks the q layout against a buffer of `rows` rows; returns stride, offset and blocks per sequence. */
export function resolveAttentionLayout(
  label: string,
  v: AttentionVariant,
  layout: AttentionLayout,
  rows: number,
  maxContextLen: number,
  q: BufferSlice,
): { stride: number; offset: number; maxBlocks: number; scales: KvScales } {
  const rowElems = v.numQHeads * v.headDim;
  const stride = layout.qTokenStride ?? rowElems;
  const offset = layout.qOffset ?? 0;
  if (!(stride % 4 === 0 && offset % 4 === 0 && offset >= 0 && offset + rowElems <= stride))
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: q heads at offset ${offset} (+${rowElems}) in rows of ${stride} elements; both must be multiples of 4 and fit the row`,
    );
  const bytes = ((rows - 1) * stride + offset + rowElems) * 4;
  if (sliceBytes(q) < bytes)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: q has ${sliceBytes(q)} bytes, expected at least ${bytes} for ${rows} rows (step maximum)`,
    );
  const maxBlocks = layout.maxBlocksPerSeq ?? Math.ceil(maxContextLen / KV_BLOCK_SIZE);
  if (!(Number.isInteger(maxBlocks) && maxBlocks >= 1))
    throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: maxBlocksPerSeq ${maxBlocks} must be an integer ≥ 1`);
  return { stride, offset, maxBlocks, scales: checkKvScales(label, v.dtype, layout) };
}

export function checkCache(label: string, v: AttentionVariant, cache: KvCache): void {
  const s = cache.shape;
  if (s.dtype !== v.dtype || s.numKvHeads !== v.numKvHeads || s.headDim !== v.headDim)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: cache is (${s.dtype}, Hkv ${s.numKvHeads}, D ${s.headDim}), expected (${v.dtype}, Hkv ${v.numKvHeads}, D ${v.headDim})`,
    );
  const bytes = kvCacheBytes(s);
  for (const [what, buf] of [
    ['cache.k', cache.k],
    ['cache.v', cache.v],
  ] as const) {
    if (buf.size < bytes)
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${what} has ${buf.size} bytes, expected ${bytes}`);
  }
}

export function needBytes(label: string, what: string, slice: BufferSlice, bytes: number, why: string): void {
  if (sliceBytes(slice) < bytes)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${why}`,
    );
}

export function attentionDecodeName(v: AttentionDecodeVariant): string {
  return `attention_decode_${kvTag(v.dtype)}_f32`;
}

interface Scratch {
  acc: GPUBuffer;
  ml: GPUBuffer;
}

export class AttentionDecode {
  readonly name: string;
  /** Partition partials, one pair per step, shared by every layer bound with this kernel (dispatches serialize). */
  private readonly scratch = new WeakMap<AttentionStep, Scratch>();

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly reducePipeline: GPUComputePipeline,
    readonly variant: Required<AttentionDecodeVariant>,
  ) {
    this.name = attentionDecodeName(variant);
  }

  static async create(gpu: Gpu, variant: AttentionDecodeVariant): Promise<AttentionDecode> {
    const name = attentionDecodeName(variant);
    checkAttentionVariant(name, variant);
    const D = variant.headDim;
    const wgSize = variant.wgSize ?? 64;
    if (!((wgSize & (wgSize - 1)) === 0 && wgSize >= D / 8 && wgSize <= 256))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${name}: wgSize ${wgSize}: a power of two in [D/8, 256]`);
    const headDim = `const HEAD_DIM: u32 = ${D}u;`;
    const code = [
      kvDeclarations(variant.dtype, D),
      headDim,
      `const MAX_PART: u32 = ${MAX_PARTITION_SIZE}u;`,
      `const WG_SIZE: u32 = ${wgSize}u;`,
      composeKvKernel(
        loadWgsl(new URL('./attention_decode.wgsl', import.meta.url)),
        variant.dtype,
        {},
        'attention_decode',
      ),
    ].join('\n');
    const reduceCode = [headDim, loadWgsl(new URL('./attention_decode_reduce.wgsl', import.meta.url))].join('\n');
    const [pipeline, reducePipeline] = await Promise.all([
      gpu.pipelines.get({ label: name, code }),
      gpu.pipelines.get({ label: `attention_decode_reduce_f32`, code: reduceCode }),
    ]);
    return new AttentionDecode(gpu, pipeline, reducePipeline, { ...variant, wgSize });
  }

  private scratchFor(step: AttentionStep, label: string): Scratch {
    let s = this.scratch.get(step);
    if (!s) {
      const rows = step.maxPartitions > 1 ? step.maxSeqs * this.variant.numQHeads * step.maxPartitions : 0;
      const bytes = rows * this.variant.headDim * 4;
      if (bytes > this.gpu.caps.maxStorageBufferBindingSize)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: split-K partials for ${step.maxSeqs} sequences × ${this.variant.numQHeads} heads × ${step.maxPartitions} partitions need ${bytes} bytes, the device binds at most ${this.gpu.caps.maxStorageBufferBindingSize}`,
          { hint: 'use a larger partitionSize or fewer sequences per decode step' },
        );
      s = {
        acc: createBuffer(this.gpu, `${this.name}/partials`, Math.max(16, rows * this.variant.headDim * 4)),
        ml: createBuffer(this.gpu, `${this.name}/partial_max_sum`, Math.max(16, rows * 8)),
      };
      this.scratch.set(step, s);
    }
    return s;
  }

  /**
   * Binds one layer's buffers once. Each recording attends `step.numSeqs` sequences (query row s of q is
   * sequence s) over up to `step.numPartitions` partitions, and adds the reduce dispatch only when there are two or
   * more.
   */
  bind(bufs: AttentionDecodeBuffers, step: AttentionStep, layout: AttentionLayout = {}, label = this.name): Dispatch {
    const v = this.variant;
    const { numQHeads: hq, numKvHeads: hkv, headDim: D } = v;
    const S = step.maxSeqs;
    const scratch = this.scratchFor(step, label); // first: a step too large for any binding is the root cause
    const { stride, offset, maxBlocks, scales } = resolveAttentionLayout(
      label,
      v,
      layout,
      S,
      step.maxContextLen,
      bufs.q,
    );
    checkCache(label, v, bufs.cache);
    needBytes(label, 'blockTables', bufs.blockTables, S * maxBlocks * 4, `${S} sequences × ${maxBlocks} blocks`);
    needBytes(label, 'contextLens', bufs.contextLens, S * 4, `${S} sequences`);
    needBytes(label, 'out', bufs.out, S * hq * D * 4, `${S} sequences × ${hq} heads × ${D}`);

    const params = new ArrayBuffer(48);
    new Uint32Array(params, 0, 8).set([
      hq,
      hkv,
      hq / hkv,
      stride / 4,
      offset / 4,
      maxBlocks,
      step.maxPartitions,
      D / 8,
    ]);
    new Float32Array(params, 32, 2).set([scales.kScale / Math.sqrt(D), scales.vScale]);
    new Uint32Array(params, 40, 1)[0] = v.wgSize;
    const bindGroup = makeBindGroup(this.gpu, label, this.pipeline, [
      createUniform(this.gpu, `${label}/params`, new Uint8Array(params)),
      step.uniform,
      bufs.q,
      bufs.blockTables,
      bufs.contextLens,
      bufs.cache.k,
      bufs.cache.v,
      bufs.out,
      scratch.acc,
      scratch.ml,
    ]);
    const reduceParams = new ArrayBuffer(16);
    new Uint32Array(reduceParams, 0, 2).set([hq, step.maxPartitions]);
    new Float32Array(reduceParams, 8, 1)[0] = scales.vScale;
    const reduceGroup = makeBindGroup(this.gpu, `${label}/reduce`, this.reducePipeline, [
      createUniform(this.gpu, `${label}/reduce_params`, new Uint8Array(reduceParams)),
      step.uniform,
      bufs.contextLens,
      scratch.acc,
      scratch.ml,
      bufs.out,
    ]);
    const { pipeline, reducePipeline } = this;
    return {
      label,
      encode(pass) {
        if (step.numSeqs === 0) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(hq, step.numSeqs, step.numPartitions);
        if (step.numPartitions > 1) {
          pass.setPipeline(reducePipeline);
          pass.setBindGroup(0, reduceGroup);
          pass.dispatchWorkgroups(hq, step.numSeqs);
        }
      },
    };
  }
}

// attention_prefill wrapper: tiled causal attention over the paged cache for a packed batch of sequences
// (cu_seqlens-style query offsets), one dispatch per layer per step (see attention_prefill.wgsl).
import { KernelError } from '../core/errors.js';
import {
  type AttentionLayout,
  type AttentionVariant,
  checkAttentionVariant,
  checkCache,
  needBytes,
  resolveAttentionLayout,
} from './attention_decode.js';
import type { AttentionStep } from './attention_step.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, makeBindGroup } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { composeKvKernel, type KvCache, kvDeclarations, kvTag } from './kv_cache.js';

/** Threads per query row: each scores 16/TPR keys of a block and owns D/TPR output dims. */
const TPR = 8;

export interface AttentionPrefillVariant extends AttentionVariant {
  /** Query rows per workgroup (16, 8 or 4); default: the largest whose tiles fit the device's workgroup memory. */
  blockQ?: number;
}

export interface AttentionPrefillBuffers {
  /** f32 query rows, packed sequence after sequence (see AttentionLayout). */
  q: BufferSlice;
  /** u32 [maxSeqs + 1]: sequence s owns q rows [queryStart[s], queryStart[s+1]). */
  queryStart: BufferSlice;
  /** u32 [maxSeqs]: cached + new tokens of each sequence (its new tokens are the last queryLen of them). */
  contextLens: BufferSlice;
  /** u32 [maxSeqs, maxBlocksPerSeq]. */
  blockTables: BufferSlice;
  cache: KvCache;
  /** f32 [maxTokens, Hq, D]. */
  out: BufferSlice;
}

export function attentionPrefillName(v: AttentionPrefillVariant, blockQ: number): string {
  return `attention_prefill_${kvTag(v.dtype)}_f32_bq${blockQ}`;
}

function workgroupBytes(blockQ: number, headDim: number): number {
  return blockQ * headDim * 4 + 16 * headDim * 4 + blockQ * 16 * 4;
}

export class AttentionPrefill {
  readonly name: string;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: AttentionVariant,
    readonly blockQ: number,
  ) {
    this.name = attentionPrefillName(variant, blockQ);
  }

  static async create(gpu: Gpu, variant: AttentionPrefillVariant): Promise<AttentionPrefill> {
    const D = variant.headDim;
    checkAttentionVariant(attentionPrefillName(variant, variant.blockQ ?? 16), variant);
    const limit = gpu.caps.maxComputeWorkgroupStorageSize;
    const blockQ = variant.blockQ ?? [16, 8, 4].find((bq) => workgroupBytes(bq, D) <= limit) ?? 4;
    const name = attentionPrefillName(variant, blockQ);
    if (![16, 8, 4].includes(blockQ) || workgroupBytes(blockQ, D) > limit)
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `${name}: blockQ ${blockQ} must be 16, 8 or 4 with tiles (${workgroupBytes(blockQ, D)} B) within the device's ${limit} B of workgroup memory`,
      );
    const code = [
      kvDeclarations(variant.dtype, D),
      `const HEAD_DIM: u32 = ${D}u;`,
      `const BQ: u32 = ${blockQ}u;`,
      `const TPR: u32 = ${TPR}u;`,
      `const WG_SIZE: u32 = ${blockQ * TPR}u;`,
      composeKvKernel(
        loadWgsl(new URL('./attention_prefill.wgsl', import.meta.url)),
        variant.dtype,
        {},
        'attention_prefill',
      ),
    ].join('\n');
    const pipeline = await gpu.pipelines.get({ label: name, code });
    return new AttentionPrefill(gpu, pipeline, variant, blockQ);
  }

  /**
   * Binds one layer's buffers once. Each recording attends the `step.numTokens` packed query rows of
   * `step.numSeqs` sequences.
   */
  bind(bufs: AttentionPrefillBuffers, step: AttentionStep, layout: AttentionLayout = {}, label = this.name): Dispatch {
    const v = this.variant;
    const { numQHeads: hq, numKvHeads: hkv, headDim: D } = v;
    const S = step.maxSeqs;
    const T = step.maxTokens;
    const { stride, offset, maxBlocks, scales } = resolveAttentionLayout(
      label,
      v,
      layout,
      T,
      step.maxContextLen,
      bufs.q,
    );
    checkCache(label, v, bufs.cache);
    needBytes(label, 'queryStart', bufs.queryStart, (S + 1) * 4, `${S} sequences (+1)`);
    needBytes(label, 'contextLens', bufs.contextLens, S * 4, `${S} sequences`);
    needBytes(label, 'blockTables', bufs.blockTables, S * maxBlocks * 4, `${S} sequences × ${maxBlocks} blocks`);
    needBytes(label, 'out', bufs.out, T * hq * D * 4, `${T} tokens × ${hq} heads × ${D}`);
    const maxGrid = Math.ceil(T / this.blockQ) + S;
    if (maxGrid > this.gpu.caps.maxComputeWorkgroupsPerDimension)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: ${T} tokens in ${S} sequences need up to ${maxGrid} query tiles, the device allows ${this.gpu.caps.maxComputeWorkgroupsPerDimension}`,
        { hint: 'prefill in smaller chunks' },
      );

    const params = new ArrayBuffer(48);
    new Uint32Array(params, 0, 8).set([hq, hkv, hq / hkv, stride / 4, offset / 4, maxBlocks, D / 4, 16]);
    new Float32Array(params, 32, 2).set([scales.kScale / Math.sqrt(D), scales.vScale]);
    const bindGroup = makeBindGroup(this.gpu, label, this.pipeline, [
      createUniform(this.gpu, `${label}/params`, new Uint8Array(params)),
      step.uniform,
      bufs.q,
      bufs.queryStart,
      bufs.contextLens,
      bufs.blockTables,
      bufs.cache.k,
      bufs.cache.v,
      bufs.out,
    ]);
    const { pipeline, blockQ } = this;
    return {
      label,
      encode(pass) {
        if (step.numTokens === 0 || step.numSeqs === 0) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(Math.ceil(step.numTokens / blockQ) + step.numSeqs, hq);
      },
    };
  }
}

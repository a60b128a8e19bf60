// Attention over the paged KV cache for one step. Decode steps (one new token per sequence) run the split-K decode
// kernel, one query row per sequence. Steps with a longer chunk run the tiled causal prefill kernel over the packed
// sequences (query starts, context lengths, block tables per sequence): each new token attends its sequence's
// cached tokens and the chunk up to itself, whose keys and values the rope dispatch wrote into the cache first.
// Both read q in place from the fused qkv rows and write [T, Hq·D].
import { AttentionDecode } from '../../kernels/attention_decode.js';
import { AttentionPrefill } from '../../kernels/attention_prefill.js';
import { AttentionStep, MAX_PARTITION_SIZE } from '../../kernels/attention_step.js';
import { createBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Dispatch } from '../../kernels/gpu/dispatch.js';
import type { KvCache, KvDtype } from '../../kernels/kv_cache.js';
import type { Qwen3VlMoeTextConfig } from './config.js';
import type { ForwardBuffers } from './forward_buffers.js';

export type StepMode = 'decode' | 'prefill';

/** Decode split-K partitions of 256 tokens, longer for long contexts so there are at most 64 (partial scratch). */
export function decodePartitionSize(maxContextLen: number): number {
  const size = Math.ceil(maxContextLen / 64 / 16) * 16;
  return Math.min(MAX_PARTITION_SIZE, Math.max(256, size));
}

export interface SeqShape {
  queryLen: number;
  contextLen: number;
  blockTable: readonly number[];
}

export class ForwardAttention {
  private constructor(
    private readonly gpu: Gpu,
    private readonly cfg: Qwen3VlMoeTextConfig,
    private readonly bufs: ForwardBuffers,
    private readonly step: AttentionStep,
    /** u32 [maxSeqs, maxBlocksPerSeq]: one row per sequence. */
    private readonly blockTables: GPUBuffer,
    /** u32 [maxSeqs]: cached + new tokens of each sequence. */
    private readonly contextLens: GPUBuffer,
    /** u32 [maxSeqs + 1]: sequence s owns query rows [queryStart[s], queryStart[s + 1]) (prefill). */
    private readonly queryStart: GPUBuffer,
    private readonly decode: AttentionDecode,
    private readonly prefill: AttentionPrefill,
  ) {}

  static async create(
    gpu: Gpu,
    cfg: Qwen3VlMoeTextConfig,
    dtype: KvDtype,
    bufs: ForwardBuffers,
    maxContextLen: number,
  ): Promise<ForwardAttention> {
    const variant = {
      numQHeads: cfg.numAttentionHeads,
      numKvHeads: cfg.numKeyValueHeads,
      headDim: cfg.headDim,
      dtype,
    };
    const { maxSeqs, maxTokens, maxBlocksPerSeq } = bufs.limits;
    const step = new AttentionStep(
      gpu,
      { maxSeqs, maxTokens, maxContextLen, partitionSize: decodePartitionSize(maxContextLen) },
      'qwen3_vl_moe/attention_step',
    );
    const blockTables = createBuffer(gpu, 'qwen3_vl_moe/block_tables', maxSeqs * maxBlocksPerSeq * 4);
    const contextLens = createBuffer(gpu, 'qwen3_vl_moe/context_lens', maxSeqs * 4);
    const queryStart = createBuffer(gpu, 'qwen3_vl_moe/query_start', (maxSeqs + 1) * 4);
    const decode = await AttentionDecode.create(gpu, variant);
    const prefill = await AttentionPrefill.create(gpu, variant);
    return new ForwardAttention(gpu, cfg, bufs, step, blockTables, contextLens, queryStart, decode, prefill);
  }

  /** Decode when every sequence runs exactly one new token. */
  static modeOf(seqs: readonly SeqShape[]): StepMode {
    return seqs.every((s) => s.queryLen === 1) ? 'decode' : 'prefill';
  }

  /** Writes the sequences' block tables, context lengths and query starts (already checked by the model). */
  update(seqs: readonly SeqShape[]): void {
    const maxBlocks = this.bufs.limits.maxBlocksPerSeq;
    const S = seqs.length;
    const tables = new Uint32Array(S * maxBlocks);
    const lens = new Uint32Array(S);
    const starts = new Uint32Array(S + 1);
    seqs.forEach((s, i) => {
      tables.set(s.blockTable.slice(0, Math.min(maxBlocks, s.blockTable.length)), i * maxBlocks);
      lens[i] = s.contextLen;
      starts[i + 1] = starts[i] + s.queryLen;
    });
    writeBuffer(this.gpu, this.blockTables, 0, tables);
    writeBuffer(this.gpu, this.contextLens, 0, lens);
    writeBuffer(this.gpu, this.queryStart, 0, starts);
    this.step.update({ numSeqs: S, numTokens: starts[S], maxContextLen: Math.max(...lens) });
  }

  bind(layer: number, cache: KvCache, mode: StepMode): Dispatch[] {
    const c = this.cfg;
    const layout = {
      qTokenStride: (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim,
      qOffset: 0,
      maxBlocksPerSeq: this.bufs.limits.maxBlocksPerSeq,
    };
    const bufs = {
      q: this.bufs.qkv,
      blockTables: this.blockTables,
      contextLens: this.contextLens,
      cache,
      out: this.bufs.attnOut,
    };
    if (mode === 'decode') return [this.decode.bind(bufs, this.step, layout, `layer${layer}/attention_decode`)];
    return [
      this.prefill.bind({ ...bufs, queryStart: this.queryStart }, this.step, layout, `layer${layer}/attention_prefill`),
    ];
  }

  destroy(): void {
    this.blockTables.destroy();
    this.contextLens.destroy();
    this.queryStart.destroy();
    this.step.uniform.destroy();
  }
}

// Attention over the paged KV cache for one step, with the split-K decode kernel over one "query row" per new
// token: row i attends its own sequence's cached tokens up to and including itself (context length = its position
// + 1), through its sequence's block table (copied per row). For decode steps that is one row per sequence; for a
// prefill chunk it is causal attention over the chunk and everything cached before it, since the rope dispatch
// wrote the chunk's keys and values into the cache first. q is read in place from the fused qkv rows; the output is
// [T, Hq·D].
import { AttentionDecode } from '../../kernels/attention_decode.js';
import { AttentionStep } from '../../kernels/attention_step.js';
import { createBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Dispatch } from '../../kernels/gpu/dispatch.js';
import type { KvCache, KvDtype } from '../../kernels/kv_cache.js';
import type { Qwen3VlMoeTextConfig } from './config.js';
import type { ForwardBuffers } from './forward_buffers.js';

export type StepMode = 'decode' | 'prefill';

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
    /** u32 [maxTokens, maxBlocksPerSeq]: the block table of each query row's sequence. */
    private readonly blockTables: GPUBuffer,
    /** u32 [maxTokens]: keys each query row attends. */
    private readonly contextLens: GPUBuffer,
    private readonly decode: AttentionDecode,
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
    const { maxTokens, maxBlocksPerSeq } = bufs.limits;
    const step = new AttentionStep(
      gpu,
      { maxSeqs: maxTokens, maxTokens, maxContextLen },
      'qwen3_vl_moe/attention_step',
    );
    const blockTables = createBuffer(gpu, 'qwen3_vl_moe/block_tables', maxTokens * maxBlocksPerSeq * 4);
    const contextLens = createBuffer(gpu, 'qwen3_vl_moe/context_lens', maxTokens * 4);
    const decode = await AttentionDecode.create(gpu, variant);
    return new ForwardAttention(gpu, cfg, bufs, step, blockTables, contextLens, decode);
  }

  /** Decode when every sequence runs exactly one new token. */
  static modeOf(seqs: readonly SeqShape[]): StepMode {
    return seqs.every((s) => s.queryLen === 1) ? 'decode' : 'prefill';
  }

  /** Writes the query rows' block tables and context lengths (the sequences' checked inputs). */
  update(seqs: readonly SeqShape[]): void {
    const maxBlocks = this.bufs.limits.maxBlocksPerSeq;
    const T = seqs.reduce((n, s) => n + s.queryLen, 0);
    const tables = new Uint32Array(T * maxBlocks);
    const lens = new Uint32Array(T);
    let row = 0;
    for (const s of seqs) {
      const blocks = s.blockTable.slice(0, Math.min(maxBlocks, s.blockTable.length));
      for (let j = 0; j < s.queryLen; j++, row++) {
        tables.set(blocks, row * maxBlocks);
        lens[row] = s.contextLen - s.queryLen + j + 1;
      }
    }
    writeBuffer(this.gpu, this.blockTables, 0, tables);
    writeBuffer(this.gpu, this.contextLens, 0, lens);
    this.step.update({ numSeqs: T, numTokens: T, maxContextLen: Math.max(...seqs.map((s) => s.contextLen)) });
  }

  bind(layer: number, cache: KvCache, _mode: StepMode): Dispatch[] {
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
    return [this.decode.bind(bufs, this.step, layout, `layer${layer}/attention`)];
  }

  destroy(): void {
    this.blockTables.destroy();
    this.contextLens.destroy();
    this.step.uniform.destroy();
  }
}

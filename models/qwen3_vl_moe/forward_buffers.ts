// The activation and per-step input buffers of the text forward, sized once at load for the largest step
// (maxTokens new tokens over at most maxSeqs sequences). Every step graph binds these same buffers; the MoE
// blocks' scratch (router output, expert activations, routing) is their own, shared by all layers.
import { createBuffer, STORAGE } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Qwen3VlMoeTextConfig } from './config.js';

export interface StepLimits {
  /** New tokens one step may run (all sequences together). */
  maxTokens: number;
  /** Sequences one step may run. */
  maxSeqs: number;
  /** Blocks in one sequence's block table (maxModelLen / 16, rounded up). */
  maxBlocksPerSeq: number;
  /** Rows one step may read logits back for. */
  maxLogitRows: number;
}

/** Logit rows one step may compute: a sampled row per sequence, then the rows read back. */
export function logitRowCapacity(l: StepLimits): number {
  return l.maxSeqs + l.maxLogitRows;
}

export class ForwardBuffers {
  readonly ids: GPUBuffer;
  /** u32 [3, T]: t, h, w rows of this step's T tokens. */
  readonly positions: GPUBuffer;
  readonly slotMapping: GPUBuffer;
  /** The residual stream h [T, H] f32. */
  readonly hidden: GPUBuffer;
  /** RMSNorm output [T, H] f32. */
  readonly normed: GPUBuffer;
  /** [T, (Hq + 2·Hkv)·D] f32: q, k, v heads of each token. */
  readonly qkv: GPUBuffer;
  /** [T, Hq·D] f32. */
  readonly attnOut: GPUBuffer;
  /** [T, H] f32: a projection's output before it joins the residual stream (GEMM path). */
  readonly projOut: GPUBuffer;
  /** lm_head rows: which token rows get logits (u32 per logit row), and the all-zero expert of each tile. */
  readonly logitRows: GPUBuffer;
  readonly logitTiles: GPUBuffer;
  /** [logitRowCapacity, V] f32: sampled rows first, then the rows read back. */
  readonly logits: GPUBuffer;
  private readonly all: GPUBuffer[];

  constructor(
    gpu: Gpu,
    readonly cfg: Qwen3VlMoeTextConfig,
    readonly limits: StepLimits,
  ) {
    const T = limits.maxTokens;
    const H = cfg.hiddenSize;
    const D = cfg.headDim;
    const qkvDim = (cfg.numAttentionHeads + 2 * cfg.numKeyValueHeads) * D;
    const b = (name: string, bytes: number) => createBuffer(gpu, `qwen3_vl_moe/${name}`, bytes, STORAGE);
    this.ids = b('ids', T * 4);
    this.positions = b('positions', 3 * T * 4);
    this.slotMapping = b('slot_mapping', T * 4);
    this.hidden = b('hidden', T * H * 4);
    this.normed = b('normed', T * H * 4);
    this.qkv = b('qkv', T * qkvDim * 4);
    this.attnOut = b('attn_out', T * cfg.numAttentionHeads * D * 4);
    this.projOut = b('proj_out', T * H * 4);
    const R = logitRowCapacity(limits);
    this.logitRows = b('logit_rows', R * 4);
    this.logitTiles = b('logit_tiles', R * 4); // zeros: lm_head is "expert" 0 of a one-expert grouped matvec
    this.logits = b('logits', R * cfg.vocabSize * 4);
    this.all = [
      this.ids,
      this.positions,
      this.slotMapping,
      this.hidden,
      this.normed,
      this.qkv,
      this.attnOut,
      this.projOut,
      this.logitRows,
      this.logitTiles,
      this.logits,
    ];
  }

  destroy(): void {
    for (const b of this.all) b.destroy();
  }
}

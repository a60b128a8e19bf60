// Drives the GPU model the way the engine will: each sequence owns a fixed run of KV blocks, a step is its new
// tokens with consecutive positions and the slots they land in.
import { KV_BLOCK_SIZE } from '../../kernels/kv_cache.js';
import { greedySampleRow } from '../../kernels/sampling.js';
import type { Qwen3VlMoeModel, SeqStep } from '../../models/qwen3_vl_moe/model.js';
import { argmax } from './qwen3_vl_moe_reference.js';

/** A sequence whose KV lives in blocks [firstBlock, firstBlock + numBlocks), listed in a shuffled order. */
export class TestSeq {
  readonly blockTable: number[];
  cached = 0;

  constructor(firstBlock: number, numBlocks: number) {
    // Reversed so a logical block never sits at its own physical index: block-table reads are exercised.
    this.blockTable = Array.from({ length: numBlocks }, (_, i) => firstBlock + numBlocks - 1 - i);
  }

  /** The step that appends `tokens` after what is cached (call `advance` once it ran). */
  step(tokens: readonly number[]): SeqStep {
    const positions = tokens.map((_, j) => this.cached + j);
    const slotMapping = positions.map(
      (p) => this.blockTable[Math.floor(p / KV_BLOCK_SIZE)] * KV_BLOCK_SIZE + (p % KV_BLOCK_SIZE),
    );
    return {
      tokenIds: tokens,
      positions,
      slotMapping,
      blockTable: this.blockTable,
      contextLen: this.cached + tokens.length,
    };
  }

  advance(n: number): void {
    this.cached += n;
  }
}

/** Kept under the name the model tests use. */
export const greedyRow = greedySampleRow;

/**
 * Prefill `prompt`, then decode greedily `count` tokens, one step each: the argmax of the logits read back, or with
 * `gpuSampling` the GPU sampler's greedy pick (the logits are read back too and their argmax must agree).
 */
export async function gpuGreedy(
  model: Qwen3VlMoeModel,
  seq: TestSeq,
  prompt: readonly number[],
  count: number,
  gpuSampling = false,
) {
  const out: number[] = [];
  let next = prompt;
  for (let i = 0; i < count; i++) {
    const step = seq.step(next);
    const r = await model.forward({ seqs: [gpuSampling ? { ...step, sample: greedyRow(i), logits: 'last' } : step] });
    seq.advance(next.length);
    const id = gpuSampling ? r.samples[0]!.tokenId : argmax(r.logits);
    if (argmax(r.logits) !== id) throw new Error(`GPU greedy sample ${id}, logits argmax ${argmax(r.logits)}`);
    out.push(id);
    next = [id];
  }
  return out;
}

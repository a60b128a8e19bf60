// The engine's ModelRunner (engine/model_runner.ts) over the GPU model: one scheduled batch → one forward. Every
// entry's new tokens run with their positions and slots; entries that sample get the next token (and its
// logprobs) from the GPU sampler; prefill chunks that score their prompt read back the chunk's logits, and the
// host turns the few rows asked for into logprobs.
import { ModelError } from '../../core/errors.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { SampledLogprobs, SampleRow } from '../../kernels/sampling.js';
import type { ModelRunner, PromptLogprobsOutput, SampledToken, StepOutput } from '../../engine/model_runner.js';
import type { TokenLogprobs } from '../../engine/request.js';
import type { SampleSpec, ScheduledBatch } from '../../engine/scheduled_batch.js';
import { Qwen3VlMoeModel, type Qwen3VlMoeLoadOptions, type SeqStep } from './model.js';

/** The engine's sampling spec as a sampler row; logprobs are the model's own (vLLM's default raw_logprobs). */
export function sampleRowOf(spec: SampleSpec): SampleRow {
  const p = spec.params;
  return {
    temperature: p.temperature,
    topK: p.topK,
    topP: p.topP,
    minP: p.minP,
    repetitionPenalty: p.repetitionPenalty,
    presencePenalty: p.presencePenalty,
    frequencyPenalty: p.frequencyPenalty,
    seed: spec.seed,
    step: spec.outputIndex,
    numLogprobs: spec.numLogprobs,
    logprobSource: 'raw',
    suppressTokenIds: spec.suppressTokenIds,
    tokenIds: spec.tokenIds,
    numPromptTokens: spec.numPromptTokens,
  };
}

function tokenLogprobsOf(l: SampledLogprobs): TokenLogprobs {
  return { tokenId: l.tokenId, logprob: l.logprob, rank: l.rank, top: l.top };
}

/**
 * Logprobs of `target` under one row of logits (f64 log-softmax), its rank (tokens whose logprob is ≥ its own, as
 * vLLM counts) and the `numTop` most likely tokens (ties: lower id first).
 */
export function promptTokenLogprobs(row: Float32Array, target: number, numTop: number): TokenLogprobs {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const logprob = row[target] - lse;
  let rank = 0;
  for (const v of row) if (v >= row[target]) rank++;
  const top: { tokenId: number; logprob: number }[] = [];
  if (numTop > 0) {
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    for (const id of order.slice(0, numTop)) top.push({ tokenId: id, logprob: row[id] - lse });
  }
  return { tokenId: target, logprob, rank, top };
}

export class Qwen3VlMoeRunner implements ModelRunner {
  private isReleased = false;

  private constructor(readonly model: Qwen3VlMoeModel) {}

  /** Loads the model; prompt logprobs need every token of a chunk read back, so logit rows = maxTokens. */
  static async create(gpu: Gpu, dir: string, opts: Qwen3VlMoeLoadOptions = {}): Promise<Qwen3VlMoeRunner> {
    const maxTokens = opts.maxTokens ?? 256;
    return new Qwen3VlMoeRunner(await Qwen3VlMoeModel.load(gpu, dir, { maxLogitRows: maxTokens, ...opts }));
  }

  get numKvBlocks(): number {
    return this.model.numKvBlocks;
  }

  get blockSize(): number {
    return this.model.blockSize;
  }

  get maxModelLen(): number {
    return this.model.maxModelLen;
  }

  get vocabSize(): number {
    return this.model.vocabSize;
  }

  async execute(batch: ScheduledBatch): Promise<StepOutput> {
    if (this.isReleased) throw new ModelError('DAWN_ERR_MODEL_RELEASED', 'qwen3_vl_moe runner: execute after release');
    const seqs: SeqStep[] = batch.entries.map((e) => ({
      tokenIds: e.tokenIds,
      positions: e.positions,
      slotMapping: e.slotMapping,
      blockTable: e.blockTable,
      contextLen: e.contextLen,
      logits: e.phase === 'prefill' && e.promptLogprobs !== null ? 'all' : 'none',
      sample: e.sample ? sampleRowOf(e.sample) : undefined,
    }));
    const out = await this.model.forward({ seqs });
    const V = this.vocabSize;
    const sampled: SampledToken[] = [];
    const promptLogprobs: PromptLogprobsOutput[] = [];
    let row = 0; // read-back rows, in entry order
    batch.entries.forEach((e, i) => {
      const s = out.samples[i];
      if (e.sample !== null) {
        if (!s) throw new ModelError('DAWN_ERR_MODEL_INTERNAL', `qwen3_vl_moe runner: seq ${e.seqId} was not sampled`);
        sampled.push({
          seqId: e.seqId,
          tokenId: s.tokenId,
          logprobs: s.logprobs ? tokenLogprobsOf(s.logprobs) : null,
        });
      }
      if (e.phase === 'prefill' && e.promptLogprobs !== null) {
        const { numTop, targetTokenIds } = e.promptLogprobs;
        const logprobs = targetTokenIds.map((target, j) =>
          promptTokenLogprobs(out.logits.subarray((row + j) * V, (row + j + 1) * V), target, numTop),
        );
        promptLogprobs.push({ seqId: e.seqId, logprobs });
        row += e.tokenIds.length;
      }
    });
    return { sampled, promptLogprobs };
  }

  async release(): Promise<void> {
    if (this.isReleased) return;
    this.isReleased = true;
    this.model.release();
  }
}

// The engine's ModelRunner (engine/model_runner.ts) over the GPU model: one scheduled batch → one forward. Every
// entry's new tokens run with their positions and slots; entries that sample get the next token (and its
// logprobs) from the GPU sampler; prefill chunks that score their prompt read back the chunk's logits, and the
// host turns the few rows asked for into logprobs.
// Images: an entry of a request with images gets M-RoPE positions (mrope_positions.ts; decode steps too, through
// the rope delta), and a prefill chunk that covers image tokens gets those rows' vision features (SeqStep.visual).
// An image is encoded whole, once per content hash (image_cache.ts), by the injected encoder; each chunk takes
// the rows it computes, so chunked prefill may split an image and a prefix-cache hit may end inside one.
import { ModelError } from '../../core/errors.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { SampledLogprobs, SampleRow } from '../../kernels/sampling.js';
import type {
  ModelRunner,
  MultiModalCacheStats,
  PromptLogprobsOutput,
  SampledToken,
  StepOutput,
} from '../../engine/model_runner.js';
import type { MultiModalInput, TokenLogprobs } from '../../engine/request.js';
import type { SampleSpec, ScheduledBatch, ScheduledSeq } from '../../engine/scheduled_batch.js';
import type { SeqVisual } from './forward_visual.js';
import { ImageCache, type ImageCacheStats } from './image_cache.js';
import { Qwen3VlMoeModel, type Qwen3VlMoeLoadOptions, type SeqStep } from './model.js';
import { MropePositions } from './mrope_positions.js';
import { readQwen3VlMoeConfig } from './config.js';
import { readImageProcessorConfig } from './processor/config.js';
import type { ImageProcessorConfig, ProcessedImage } from './processor/types.js';
import type { VisionFeatures } from './vision_encoder.js';

/** What the runner reads of MultiModalInput.data (a ProcessedImage). */
export type RunnerImage = Pick<ProcessedImage, 'pixelValues' | 'gridThw'>;

/** Runs the vision tower (production: VisionEncoder, models/qwen3_vl_moe/vision_encoder.ts). */
export interface ImageEncoder {
  encode(img: RunnerImage): Promise<VisionFeatures>;
  destroy?(): void;
}

export interface Qwen3VlMoeRunnerOptions extends Qwen3VlMoeLoadOptions {
  /** Makes the image encoder once the model is loaded (it may use the model's vision weights); none: text only. */
  imageEncoder?: (model: Qwen3VlMoeModel) => ImageEncoder | Promise<ImageEncoder>;
  /** Encoded-image cache capacity (default 1 GiB of f32 features). */
  imageCacheBytes?: number;
  /** The image processor's settings (default: the checkpoint's preprocessor_config.json). */
  imageProcessor?: ImageProcessorConfig;
  /**
   * Cap on the prompt-logprob rows one step reads back (default: maxTokens, or what one storage binding holds).
   * The engine shortens prompt-logprob prefill chunks to it.
   */
  maxLogitRows?: number;
}

const DEFAULT_IMAGE_CACHE_BYTES = 2 ** 30;

/**
 * Prompt-logprob rows one step may read back. The logits buffer holds a sampled row per sequence, then these rows,
 * and is bound whole (lm_head writes it, the sampler reads it), so (maxSeqs + rows) · vocab · 4 bytes must fit one
 * storage binding: rows = min(maxTokens, cap, what fits − maxSeqs). At least one row must fit, or prompt logprobs
 * could never progress: fewer sequences per step is then the only way to load.
 */
export function promptLogitRows(o: {
  vocabSize: number;
  maxTokens: number;
  maxSeqs: number;
  maxBindingBytes: number;
  cap?: number;
}): number {
  const { vocabSize, maxTokens, maxSeqs, maxBindingBytes, cap } = o;
  if (cap !== undefined && !(Number.isSafeInteger(cap) && cap >= 1))
    throw new ModelError('DAWN_ERR_MODEL_OPTION', `qwen3_vl_moe runner: maxLogitRows ${cap} must be an integer ≥ 1`);
  const rowBytes = vocabSize * 4;
  const fit = Math.floor(maxBindingBytes / rowBytes);
  if (fit < maxSeqs + 1)
    throw new ModelError(
      'DAWN_ERR_MODEL_OPTION',
      `qwen3_vl_moe runner: ${maxSeqs} sequences per step need ${maxSeqs + 1} logit rows of ${vocabSize} f32 ` +
        `(${(maxSeqs + 1) * rowBytes} bytes), and one storage binding holds ${maxBindingBytes} bytes (${fit} rows)`,
      { hint: `lower --max-num-seqs to at most ${Math.max(fit - 1, 0)}` },
    );
  return Math.max(1, Math.min(maxTokens, cap ?? Infinity, fit - maxSeqs));
}

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

/** What the server needs to prepare images for this runner (server/media/runner_multimodal.ts RunnerMultimodal). */
export interface RunnerImageInput {
  /** <|image_pad|>: the chat template writes one per image; the server expands it to the image's numTokens. */
  readonly imagePadTokenId: number;
  /** The checkpoint's preprocessor_config.json. */
  readonly imageProcessor: ImageProcessorConfig;
}

export class Qwen3VlMoeRunner implements ModelRunner {
  private isReleased = false;
  readonly imageCache: ImageCache;
  /** Set when the runner was loaded with an image encoder: then it takes images. */
  readonly multimodal?: RunnerImageInput;
  /** Per request's image list (the array every entry of its sequences shares): its M-RoPE positions. */
  private readonly mrope = new WeakMap<readonly MultiModalInput[], MropePositions>();

  private constructor(
    readonly model: Qwen3VlMoeModel,
    private readonly encoder: ImageEncoder | null,
    imageCacheBytes: number,
    imageProcessor: ImageProcessorConfig | null,
  ) {
    this.imageCache = new ImageCache(imageCacheBytes);
    if (imageProcessor) this.multimodal = { imagePadTokenId: model.config.imageTokenId, imageProcessor };
  }

  /**
   * Loads the model. Prompt logprobs read back every token of a chunk: as many rows as one step may run, or as
   * fit one storage binding (promptLogitRows); the engine shortens such chunks to maxPromptLogprobTokensPerStep.
   */
  static async create(gpu: Gpu, dir: string, opts: Qwen3VlMoeRunnerOptions = {}): Promise<Qwen3VlMoeRunner> {
    const { imageEncoder, imageCacheBytes, imageProcessor: processorOpt, maxLogitRows: cap, ...loadOpts } = opts;
    const config = await readQwen3VlMoeConfig(dir);
    // As Qwen3VlMoeModel.load sizes them: a decode step of maxSeqs tokens must fit.
    const maxSeqs = loadOpts.maxSeqs ?? 16;
    const maxLogitRows = promptLogitRows({
      vocabSize: config.text.vocabSize,
      maxTokens: Math.max(loadOpts.maxTokens ?? 256, maxSeqs),
      maxSeqs,
      maxBindingBytes: Math.min(gpu.caps.maxStorageBufferBindingSize, gpu.caps.maxBufferSize),
      cap,
    });
    const model = await Qwen3VlMoeModel.load(gpu, dir, { ...loadOpts, maxSeqs, maxLogitRows });
    try {
      const imageProcessor = imageEncoder ? (processorOpt ?? (await readImageProcessorConfig(dir))) : null;
      const encoder = imageEncoder ? await imageEncoder(model) : null;
      return new Qwen3VlMoeRunner(model, encoder, imageCacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES, imageProcessor);
    } catch (err) {
      model.release();
      throw err;
    }
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

  /** A prompt-logprob prefill chunk reads back all its tokens' logits: at most this many per step. */
  get maxPromptLogprobTokensPerStep(): number {
    return this.model.limits.maxLogitRows;
  }

  /** Image lookups (one per image per prefill) and hits, for vllm:mm_cache_queries / vllm:mm_cache_hits. */
  multiModalCacheStats(): MultiModalCacheStats {
    const { queries, hits } = this.imageCache.stats();
    return { queries, hits };
  }

  /** The image cache's counters, entries and bytes. */
  imageCacheStats(): ImageCacheStats {
    return this.imageCache.stats();
  }

  async execute(batch: ScheduledBatch): Promise<StepOutput> {
    if (this.isReleased) throw new ModelError('DAWN_ERR_MODEL_RELEASED', 'qwen3_vl_moe runner: execute after release');
    const seqs: SeqStep[] = [];
    for (const e of batch.entries) {
      const step: SeqStep = {
        tokenIds: e.tokenIds,
        positions: e.positions,
        slotMapping: e.slotMapping,
        blockTable: e.blockTable,
        contextLen: e.contextLen,
        logits: e.phase === 'prefill' && e.promptLogprobs !== null ? 'all' : 'none',
        sample: e.sample ? sampleRowOf(e.sample) : undefined,
      };
      if (e.mmInputs.length > 0) {
        const start = e.positions[0];
        step.positions = this.mropeOf(e.mmInputs).range(start, start + e.tokenIds.length);
        if (e.phase === 'prefill') step.visual = await this.visualOf(e, start);
      }
      seqs.push(step);
    }
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
    this.imageCache.clear();
    this.encoder?.destroy?.();
    this.model.release();
  }

  private mropeOf(mmInputs: readonly MultiModalInput[]): MropePositions {
    let m = this.mrope.get(mmInputs);
    if (m === undefined) {
      const merge = this.model.config.vision.spatialMergeSize;
      m = new MropePositions(
        mmInputs.map((mm, i) => {
          const [t, h, w] = imageOf(mm, i, merge).gridThw;
          return { tokenStart: mm.tokenStart, grid: [t, h / merge, w / merge] };
        }),
      );
      this.mrope.set(mmInputs, m);
    }
    return m;
  }

  /** The vision rows of a prefill chunk: for each image it overlaps, the features of the rows inside the chunk. */
  private async visualOf(
    e: Extract<ScheduledSeq, { phase: 'prefill' }>,
    start: number,
  ): Promise<SeqVisual | undefined> {
    const end = start + e.tokenIds.length;
    const H = this.model.config.text.hiddenSize;
    const numDeepstack = this.model.config.vision.deepstackVisualIndexes.length;
    const merge = this.model.config.vision.spatialMergeSize;
    const rows: number[] = [];
    const parts: { f: VisionFeatures; from: number; to: number }[] = [];
    for (const [i, mm] of e.mmInputs.entries()) {
      const lo = Math.max(start, mm.tokenStart);
      const hi = Math.min(end, mm.tokenStart + mm.numTokens);
      if (lo >= hi) continue;
      const img = imageOf(mm, i, merge);
      const encoder = this.encoder;
      if (encoder === null)
        throw new ModelError(
          'DAWN_ERR_MODEL_INPUT',
          'qwen3_vl_moe runner: the request has images, and this runner was loaded without a vision encoder',
        );
      // One counted lookup per image per prefill: in the chunk holding the first image row this prefill computes.
      const isFirstUse = lo === Math.max(mm.tokenStart, e.numCachedTokens);
      const f = await this.imageCache.get(mm.contentHash, () => encoder.encode(img), isFirstUse);
      if (f.embeds.length !== mm.numTokens * H || f.deepstack.length !== numDeepstack)
        throw new ModelError(
          'DAWN_ERR_MODEL_VISUAL',
          `qwen3_vl_moe runner: image ${i} encoded to ${f.embeds.length} floats and ${f.deepstack.length} deepstack layers, expected ${mm.numTokens}×${H} and ${numDeepstack}`,
        );
      for (let p = lo; p < hi; p++) rows.push(p - start);
      parts.push({ f, from: lo - mm.tokenStart, to: hi - mm.tokenStart });
    }
    if (parts.length === 0) return undefined;
    const gather = (pick: (f: VisionFeatures) => Float32Array) => {
      if (parts.length === 1) return pick(parts[0].f).subarray(parts[0].from * H, parts[0].to * H);
      const out = new Float32Array(rows.length * H);
      let at = 0;
      for (const { f, from, to } of parts) {
        out.set(pick(f).subarray(from * H, to * H), at);
        at += (to - from) * H;
      }
      return out;
    };
    return {
      rows,
      embeds: gather((f) => f.embeds),
      deepstack: Array.from({ length: numDeepstack }, (_, l) => gather((f) => f.deepstack[l])),
    };
  }
}

/** The image payload of one MultiModalInput, checked against its placeholder count. */
function imageOf(mm: MultiModalInput, i: number, merge: number): RunnerImage {
  const d = mm.data as Partial<RunnerImage> | undefined;
  const grid = d?.gridThw;
  if (
    !(d?.pixelValues instanceof Float32Array) ||
    !Array.isArray(grid) ||
    grid.length !== 3 ||
    !grid.every((v) => Number.isSafeInteger(v) && v >= 1)
  )
    throw new ModelError(
      'DAWN_ERR_MODEL_INPUT',
      `qwen3_vl_moe runner: image ${i} (${mm.contentHash}) carries no processed image (pixelValues Float32Array and gridThw [t, h, w])`,
    );
  const [t, h, w] = grid;
  if (h % merge || w % merge || (t * h * w) / (merge * merge) !== mm.numTokens)
    throw new ModelError(
      'DAWN_ERR_MODEL_INPUT',
      `qwen3_vl_moe runner: image ${i} has grid [${grid}] (${(t * h * w) / (merge * merge)} tokens after ${merge}×${merge} merging), but occupies ${mm.numTokens} prompt tokens`,
    );
  return d as RunnerImage;
}

// What `serve` loads (server/runner_factory.ts: loadRunner(options) → LoadedRunner): opens the GPU, maps the serve
// flags onto the model's options, sizes the KV pool with the engine's rule (engine/kv_budget.ts) and loads the
// Qwen3-VL-MoE runner with its GPU vision tower (VisionEncoder) for images. WebGPU does not report device memory: a
// software adapter gets a fixed pool, hardware uses DAWNLLM_GPU_MEMORY_GIB (default 24 GiB, a safe floor for the
// GPUs we target; set it to use more of an H100).
import { ModelError } from '../../core/errors.js';
import { formatBytes, formatDuration } from '../../core/format.js';
import { kvBudget } from '../../engine/kv_budget.js';
import { type Gpu, openGpu } from '../../kernels/gpu/device.js';
import { KV_BLOCK_SIZE, type KvDtype, kvBytesPerElement } from '../../kernels/kv_cache.js';
import type { LoadedRunner, RunnerLoadOptions } from '../../server/runner_factory.js';
import { type Qwen3VlMoeConfig, type Qwen3VlMoeVisionConfig, readQwen3VlMoeConfig } from './config.js';
import { promptLogitRows, Qwen3VlMoeRunner } from './model_runner.js';
import { type ImageProcessorConfig, readImageProcessorConfig } from './processor/index.js';
import { maxVisionPatches, VisionEncoder, visionWorkingBytes } from './vision_encoder.js';

/** KV blocks on a software adapter (lavapipe): 4096 tokens, enough for tests and the bundled small models. */
const SOFTWARE_KV_BLOCKS = 256;
const DEFAULT_GPU_MEMORY_GIB = 24;

export function kvDtypeOf(flag: string): KvDtype {
  if (flag === 'auto' || flag === 'bf16' || flag === 'bfloat16') return 'bf16';
  if (flag === 'fp8' || flag === 'fp8_e4m3') return 'fp8e4m3';
  throw new ModelError('DAWN_ERR_MODEL_OPTION', `--kv-cache-dtype ${flag}: expected auto, bf16, fp8 or fp8_e4m3`);
}

function checkDtype(flag: string): void {
  // Activations are f32 in every kernel; weights stay as the checkpoint stores them.
  if (!['auto', 'bfloat16', 'float32'].includes(flag))
    throw new ModelError('DAWN_ERR_MODEL_OPTION', `--dtype ${flag}: expected auto, bfloat16 or float32`, {
      hint: 'the forward computes activations in f32; weights keep the checkpoint dtype',
    });
}

/** Activation scratch of the largest step, estimated from the buffer sizes the forward allocates. */
function activationBytes(c: Qwen3VlMoeConfig, maxTokens: number, maxSeqs: number, maxBindingBytes: number): number {
  const t = c.text;
  const perToken =
    4 *
    (3 * t.hiddenSize +
      (t.numAttentionHeads + 2 * t.numKeyValueHeads) * t.headDim +
      t.numAttentionHeads * t.headDim +
      t.numExpertsPerTok * (3 * t.moeIntermediateSize + t.hiddenSize + 2));
  // A sampled row per sequence, then the prompt-logprob rows the runner keeps (what one binding holds).
  const logitRows = maxSeqs + promptLogitRows({ vocabSize: t.vocabSize, maxTokens, maxSeqs, maxBindingBytes });
  const logits = logitRows * t.vocabSize * 4;
  return maxTokens * perToken + logits + 64 * 2 ** 20;
}

/** preprocessor_config.json with --mm-processor-kwargs applied; null when images are off (--limit-mm-per-prompt 0). */
async function imageProcessorOf(o: RunnerLoadOptions): Promise<ImageProcessorConfig | null> {
  if (o.imagesPerPrompt === 0) return null;
  const cfg = await readImageProcessorConfig(o.modelDir);
  const minPixels = o.mmProcessorKwargs?.minPixels ?? cfg.minPixels;
  const maxPixels = o.mmProcessorKwargs?.maxPixels ?? cfg.maxPixels;
  if (minPixels > maxPixels)
    throw new ModelError(
      'DAWN_ERR_MODEL_OPTION',
      `--mm-processor-kwargs: min_pixels ${minPixels} exceeds max_pixels ${maxPixels} (after preprocessor_config.json)`,
    );
  return { ...cfg, minPixels, maxPixels };
}

/**
 * The biggest image the processor allows must fit one storage binding in the vision tower. The checkpoint's own
 * bound is lowered to what fits (noted in the load summary); a bound the user set explicitly is refused instead.
 */
function fitImagesToDevice(
  p: ImageProcessorConfig,
  vision: Qwen3VlMoeVisionConfig,
  gpu: Gpu,
  o: RunnerLoadOptions,
): { processor: ImageProcessorConfig; note: string } {
  const patchPixels = p.patchSize ** 2;
  const fits = maxVisionPatches(vision, gpu.caps.maxStorageBufferBindingSize);
  if (Math.floor(p.maxPixels / patchPixels) <= fits) return { processor: p, note: '' };
  const fitPixels = fits * patchPixels;
  const binding = `this device's ${gpu.caps.maxStorageBufferBindingSize}-byte storage binding`;
  if (o.mmProcessorKwargs?.maxPixels !== undefined || fitPixels < p.minPixels)
    throw new ModelError(
      'DAWN_ERR_MODEL_OPTION',
      `images of up to ${p.maxPixels} pixels do not fit ${binding} in the vision tower (at most ${fitPixels} pixels)`,
      { hint: `--mm-processor-kwargs '{"max_pixels": ${fitPixels}}' (or --limit-mm-per-prompt '{"image": 0}')` },
    );
  return {
    processor: { ...p, maxPixels: fitPixels },
    note: ` (lowered from the checkpoint's ${p.maxPixels} to fit ${binding})`,
  };
}

export async function loadRunner(o: RunnerLoadOptions): Promise<LoadedRunner> {
  checkDtype(o.dtype);
  const kvDtype = kvDtypeOf(o.kvCacheDtype);
  const requested = await imageProcessorOf(o);
  const gpu = await openGpu({ adapterName: o.device ?? undefined });
  let imageProcessor: ImageProcessorConfig | null;
  let imageBoundNote = '';
  try {
    ({ processor: imageProcessor, note: imageBoundNote } = requested
      ? fitImagesToDevice(requested, (await readQwen3VlMoeConfig(o.modelDir)).vision, gpu, o)
      : { processor: null, note: '' });
  } catch (err) {
    gpu.destroy();
    throw err;
  }
  const maxTokens = Math.max(o.maxNumBatchedTokens, o.maxNumSeqs);
  let budgetLine = '';
  // GPU bytes one encode of the largest image the processor allows needs (vLLM profiles the same worst case): kept
  // out of the KV pool, and the encoder's per-grid buffers stay within it.
  let visionReserve = 0;
  try {
    const runner = await Qwen3VlMoeRunner.create(gpu, o.modelDir, {
      kvDtype,
      maxSeqs: o.maxNumSeqs,
      maxTokens,
      maxModelLen: o.maxModelLen ?? undefined,
      // Images: the GPU vision tower over the checkpoint's vision weights (uploaded with the text model's).
      ...(imageProcessor && {
        imageProcessor,
        imageEncoder: (model) =>
          VisionEncoder.create(gpu, model.visionWeights, model.config, { planCacheBytes: visionReserve }),
      }),
      numKvBlocks: ({ weightBytes, config }) => {
        const t = config.text;
        if (imageProcessor) {
          const maxPatches = Math.floor(imageProcessor.maxPixels / imageProcessor.patchSize ** 2);
          visionReserve = visionWorkingBytes(config.vision, maxPatches, gpu.caps.maxStorageBufferBindingSize);
        }
        const layout = {
          numLayers: t.numHiddenLayers,
          numKvHeads: t.numKeyValueHeads,
          headDim: t.headDim,
          blockSize: KV_BLOCK_SIZE,
          bytesPerElement: kvBytesPerElement[kvDtype],
        };
        if (gpu.caps.adapter.isSoftware) {
          budgetLine = `KV cache: ${SOFTWARE_KV_BLOCKS} blocks (software adapter default)`;
          return SOFTWARE_KV_BLOCKS;
        }
        const gib = Number(process.env.DAWNLLM_GPU_MEMORY_GIB ?? DEFAULT_GPU_MEMORY_GIB);
        const b = kvBudget({
          layout,
          totalMemoryBytes: gib * 2 ** 30,
          gpuMemoryUtilization: o.gpuMemoryUtilization,
          weightBytes,
          activationBytes:
            activationBytes(
              config,
              maxTokens,
              o.maxNumSeqs,
              Math.min(gpu.caps.maxStorageBufferBindingSize, gpu.caps.maxBufferSize),
            ) + visionReserve,
          maxBindingBytes: gpu.caps.maxStorageBufferBindingSize,
        });
        budgetLine = `KV cache: ${b.numBlocks} blocks (${b.numBlocks * KV_BLOCK_SIZE} tokens, ${kvDtype}), limited by ${b.limitedBy}`;
        return b.numBlocks;
      },
    });
    const m = runner.model;
    if (o.quantization !== 'auto' && !m.format.toLowerCase().includes(o.quantization.toLowerCase())) {
      await runner.release();
      throw new ModelError('DAWN_ERR_MODEL_OPTION', `--quantization ${o.quantization}: ${o.modelDir} is ${m.format}`, {
        hint: 'use --quantization auto to serve whatever the checkpoint holds',
      });
    }
    const loadSummary = [
      `weights: ${formatBytes(m.weightBytes)} on the GPU (${m.format}), uploaded in ${formatDuration(m.loadMs)}`,
      budgetLine,
      `max model len ${m.maxModelLen}, up to ${o.maxNumSeqs} sequences and ${maxTokens} tokens per step`,
      imageProcessor
        ? `images: vision tower on the GPU, up to ${imageProcessor.maxPixels} pixels per image${imageBoundNote} ` +
          `(${formatBytes(visionReserve)} reserved), encoded-image cache ${formatBytes(runner.imageCache.capacityBytes)}`
        : 'images: off (--limit-mm-per-prompt image 0)',
    ];
    for (const line of loadSummary) o.onProgress?.(line);
    return { runner, format: m.format, loadSummary };
  } catch (err) {
    gpu.destroy();
    throw err;
  }
}

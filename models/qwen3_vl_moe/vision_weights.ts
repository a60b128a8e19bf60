// The vision tower's weights on the GPU, by role. From a checkpoint they come out of the loader's upload (the
// parameters of params.ts visionParams: BF16 linears as GpuWeights, f32 biases and LayerNorm vectors, BF16
// patch-embedding and position tables); tests and benchmarks upload host arrays with the same layout.
import { ModelError } from '../../core/errors.js';
import { toBf16Array } from '../../core/float16.js';
import { createBufferFrom } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { GpuWeight } from '../../kernels/weight_format.js';
import type { UploadedWeights } from '../../loader/upload.js';
import type { Qwen3VlMoeVisionConfig } from './config.js';
import { visionPrefix } from './params.js';

export interface VisionLinear {
  /** BF16 [N, K]. */
  weight: GpuWeight;
  /** f32 [N]. */
  bias: GPUBuffer;
}

export interface VisionLayerNorm {
  /** f32 [cols] each. */
  weight: GPUBuffer;
  bias: GPUBuffer;
}

export interface VisionBlockWeights {
  norm1: VisionLayerNorm;
  norm2: VisionLayerNorm;
  /** [q heads | k heads | v heads] rows: N = 3·D. */
  qkv: VisionLinear;
  proj: VisionLinear;
  fc1: VisionLinear;
  fc2: VisionLinear;
}

export interface VisionMergerWeights {
  /** Over D per patch (the final merger) or over the grouped merge²·D vector (deepstack mergers). */
  norm: VisionLayerNorm;
  fc1: VisionLinear;
  fc2: VisionLinear;
}

export interface VisionWeights {
  /** The Conv3d as a linear: BF16 [D, C·T·P·P] (its weight's flattening matches a pixel_values row). */
  patch: VisionLinear;
  /** BF16 [numPositionEmbeddings, D]. */
  posEmbed: GPUBuffer;
  blocks: VisionBlockWeights[];
  merger: VisionMergerWeights;
  /** One per deepstack_visual_indexes entry. */
  deepstack: VisionMergerWeights[];
}

/** Names relative to `model.visual.`, in one place for both sources. */
interface Source {
  linear(module: string, n: number, k: number): VisionLinear;
  norm(module: string, cols: number): VisionLayerNorm;
  patch(n: number, k: number): VisionLinear;
  posEmbed(): GPUBuffer;
}

export function patchInputs(cfg: Qwen3VlMoeVisionConfig): number {
  return cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize ** 2;
}

function assemble(cfg: Qwen3VlMoeVisionConfig, s: Source): VisionWeights {
  const D = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const M = D * cfg.spatialMergeSize ** 2;
  const merger = (p: string): VisionMergerWeights => ({
    norm: s.norm(`${p}.norm`, p === 'merger' ? D : M),
    fc1: s.linear(`${p}.linear_fc1`, M, M),
    fc2: s.linear(`${p}.linear_fc2`, cfg.outHiddenSize, M),
  });
  return {
    patch: s.patch(D, patchInputs(cfg)),
    posEmbed: s.posEmbed(),
    blocks: Array.from({ length: cfg.depth }, (_, b) => ({
      norm1: s.norm(`blocks.${b}.norm1`, D),
      norm2: s.norm(`blocks.${b}.norm2`, D),
      qkv: s.linear(`blocks.${b}.attn.qkv`, 3 * D, D),
      proj: s.linear(`blocks.${b}.attn.proj`, D, D),
      fc1: s.linear(`blocks.${b}.mlp.linear_fc1`, I, D),
      fc2: s.linear(`blocks.${b}.mlp.linear_fc2`, D, I),
    })),
    merger: merger('merger'),
    deepstack: cfg.deepstackVisualIndexes.map((_, i) => merger(`deepstack_merger_list.${i}`)),
  };
}

/** The vision parameters of a checkpoint upload (they stay owned by the upload). */
export function visionWeightsFromUpload(up: UploadedWeights, cfg: Qwen3VlMoeVisionConfig): VisionWeights {
  const name = (n: string) => `${visionPrefix}.${n}`;
  const f32 = (n: string): GPUBuffer => {
    const d = up.dense(name(n));
    if (d.format !== 'f32')
      throw new ModelError('DAWN_ERR_MODEL_WEIGHTS', `${name(n)}: expected an f32 vector, the upload made ${d.format}`);
    return d.buffer;
  };
  const bf16 = (n: string, elements: number): GPUBuffer => {
    const d = up.dense(name(n));
    const count = d.shape.reduce((a, b) => a * b, 1);
    if (d.format !== 'bf16' || count !== elements)
      throw new ModelError(
        'DAWN_ERR_MODEL_WEIGHTS',
        `${name(n)}: expected ${elements} bf16 values, the upload made ${count} ${d.format} [${d.shape.join(', ')}]`,
      );
    return d.buffer;
  };
  const linear = (m: string): VisionLinear => {
    const weight = up.weight(name(`${m}.weight`));
    if (weight.format !== 'bf16')
      throw new ModelError(
        'DAWN_ERR_MODEL_WEIGHTS',
        `${name(m)}.weight: the vision tower runs BF16 linears, found ${weight.format}`,
      );
    return { weight, bias: f32(`${m}.bias`) };
  };
  return assemble(cfg, {
    linear,
    norm: (m) => ({ weight: f32(`${m}.weight`), bias: f32(`${m}.bias`) }),
    patch: (n, k) => ({
      weight: {
        label: name('patch_embed.proj.weight'),
        format: 'bf16',
        numExperts: 1,
        N: n,
        K: k,
        data: bf16('patch_embed.proj.weight', n * k),
      },
      bias: f32('patch_embed.proj.bias'),
    }),
    posEmbed: () => bf16('pos_embed.weight', cfg.numPositionEmbeddings * cfg.hiddenSize),
  });
}

/**
 * Uploads host weights named as the checkpoint's (relative to `model.visual.`), each asked for with its shape:
 * matrices and tables as BF16 (f32 values are rounded; a Uint16Array is taken as BF16 bits), vectors as f32.
 * Returns the weights and the buffers to destroy.
 */
export function uploadVisionWeights(
  gpu: Gpu,
  cfg: Qwen3VlMoeVisionConfig,
  get: (name: string, shape: readonly number[]) => Float32Array | Uint16Array,
): { weights: VisionWeights; buffers: GPUBuffer[] } {
  const buffers: GPUBuffer[] = [];
  const upload = (n: string, shape: number[]): GPUBuffer => {
    const v = get(n, shape);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (v.length !== elements)
      throw new ModelError('DAWN_ERR_MODEL_WEIGHTS', `${n}: expected ${elements} values [${shape}], got ${v.length}`);
    const bf16 = shape.length > 1;
    if (!bf16 && v instanceof Uint16Array)
      throw new ModelError('DAWN_ERR_MODEL_WEIGHTS', `${n}: an f32 vector was given as BF16 bits`);
    const data = bf16 && !(v instanceof Uint16Array) ? toBf16Array(v) : v;
    const b = createBufferFrom(gpu, `${visionPrefix}.${n}`, data);
    buffers.push(b);
    return b;
  };
  const matrix = (n: string, rows: number, cols: number): GpuWeight => ({
    label: `${visionPrefix}.${n}`,
    format: 'bf16',
    numExperts: 1,
    N: rows,
    K: cols,
    data: upload(n, [rows, cols]),
  });
  const weights = assemble(cfg, {
    linear: (m, n, k) => ({ weight: matrix(`${m}.weight`, n, k), bias: upload(`${m}.bias`, [n]) }),
    norm: (m, cols) => ({ weight: upload(`${m}.weight`, [cols]), bias: upload(`${m}.bias`, [cols]) }),
    patch: (n, k) => ({ weight: matrix('patch_embed.proj.weight', n, k), bias: upload('patch_embed.proj.bias', [n]) }),
    posEmbed: () => upload('pos_embed.weight', [cfg.numPositionEmbeddings, cfg.hiddenSize]),
  });
  return { weights, buffers };
}

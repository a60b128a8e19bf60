// The text model's weights on the GPU, by role: read the config, upload the checkpoint through the loader
// (rules → IR → GpuWeight / dense buffers) and stack q/k/v into one projection per layer.
import { ModelError } from '../../core/errors.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { GpuWeight } from '../../kernels/weight_format.js';
import {
  type DenseBuffer,
  loadCheckpointToGpu,
  type UploadedWeights,
  type UploadOptions,
} from '../../loader/upload.js';
import { type Qwen3VlMoeConfig, readQwen3VlMoeConfig } from './config.js';
import { stackRows } from './model_fuse.js';
import { isMoeLayer, textPrefix } from './params.js';
import { type VisionWeights, visionWeightsFromUpload } from './vision_weights.js';
import { qwen3VlMoeWeightSpec } from './weights.js';

export interface LayerWeights {
  inputNorm: GPUBuffer;
  postAttnNorm: GPUBuffer;
  /** [q heads | k heads | v heads] rows stacked: N = (Hq + 2·Hkv)·D. */
  qkv: GpuWeight;
  o: GpuWeight;
  qNorm: GPUBuffer;
  kNorm: GPUBuffer;
  /** BF16 [E, H]. */
  router: GpuWeight;
  /** [E, 2I, H], gate rows first. */
  gateUp: GpuWeight;
  /** [E, H, I]. */
  down: GpuWeight;
}

export interface ModelWeights {
  config: Qwen3VlMoeConfig;
  /** BF16 [V, H]. */
  embed: DenseBuffer;
  layers: LayerWeights[];
  norm: GPUBuffer;
  lmHead: GpuWeight;
  /** The vision tower (owned by the same upload, released with it). */
  vision: VisionWeights;
  /** The checkpoint's format as the loader described it, e.g. "NVFP4 (ModelOpt ...)". */
  format: string;
  /** Bytes uploaded to the GPU, and how long the upload took. */
  gpuBytes: number;
  loadMs: number;
  release(): void;
}

function f32Dense(up: UploadedWeights, name: string): GPUBuffer {
  const d = up.dense(name);
  if (d.format !== 'f32')
    throw new ModelError('DAWN_ERR_MODEL_WEIGHTS', `${name}: expected an f32 norm vector, the upload made ${d.format}`);
  return d.buffer;
}

export async function loadModelWeights(gpu: Gpu, dir: string, opts: UploadOptions = {}): Promise<ModelWeights> {
  const config = await readQwen3VlMoeConfig(dir);
  const t = config.text;
  for (let l = 0; l < t.numHiddenLayers; l++)
    if (!isMoeLayer(t, l))
      throw new ModelError(
        'DAWN_ERR_MODEL_CONFIG',
        `${dir}: layer ${l} is a dense-MLP layer (mlp_only_layers / decoder_sparse_step); the GPU forward runs MoE layers only`,
      );
  const up = await loadCheckpointToGpu(gpu, dir, qwen3VlMoeWeightSpec(config), { progress: 'auto', ...opts });
  const stacked: GpuWeight[] = [];
  try {
    const layers: LayerWeights[] = [];
    for (let l = 0; l < t.numHiddenLayers; l++) {
      const p = `${textPrefix}.layers.${l}`;
      const a = `${p}.self_attn`;
      const qkv = await stackRows(gpu, `${a}.qkv_proj`, [
        up.weight(`${a}.q_proj.weight`),
        up.weight(`${a}.k_proj.weight`),
        up.weight(`${a}.v_proj.weight`),
      ]);
      stacked.push(qkv);
      layers.push({
        inputNorm: f32Dense(up, `${p}.input_layernorm.weight`),
        postAttnNorm: f32Dense(up, `${p}.post_attention_layernorm.weight`),
        qkv,
        o: up.weight(`${a}.o_proj.weight`),
        qNorm: f32Dense(up, `${a}.q_norm.weight`),
        kNorm: f32Dense(up, `${a}.k_norm.weight`),
        router: up.weight(`${p}.mlp.gate.weight`),
        gateUp: up.weight(`${p}.mlp.experts.gate_up_proj`),
        down: up.weight(`${p}.mlp.experts.down_proj`),
      });
    }
    // The separate q/k/v buffers are no longer read: free them now rather than at release.
    for (let l = 0; l < t.numHiddenLayers; l++)
      for (const proj of ['q_proj', 'k_proj', 'v_proj'])
        destroyWeight(up.weight(`${textPrefix}.layers.${l}.self_attn.${proj}.weight`));
    const lmHead = t.tieWordEmbeddings ? up.weight(`${textPrefix}.embed_tokens.weight`) : up.weight('lm_head.weight');
    return {
      config,
      embed: up.dense(`${textPrefix}.embed_tokens.weight`),
      layers,
      norm: f32Dense(up, `${textPrefix}.norm.weight`),
      lmHead,
      vision: visionWeightsFromUpload(up, config.vision),
      format: up.format,
      gpuBytes: up.gpuBytes,
      loadMs: up.loadMs,
      release() {
        up.destroy();
        for (const w of stacked) destroyWeight(w);
      },
    };
  } catch (err) {
    up.destroy();
    for (const w of stacked) destroyWeight(w);
    throw err;
  }
}

function destroyWeight(w: GpuWeight): void {
  for (const b of [w.data, w.blockScales, w.globalScales, w.scales, w.preScale]) b?.destroy();
}

// Builds small synthetic Qwen3-VL-MoE checkpoints in every format the loader reads: a tiny config, random
// tensors for every parameter, linear weights encoded by a chosen scheme, experts in a chosen layout. Tests then
// mutate the tensor list (drop, add, reshape) to provoke each error.
import { f32ArrayToBf16Bytes, f32ArrayToBytes } from '../../loader/float_formats.js';
import { parseQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { qwen3VlMoeParams } from '../../models/qwen3_vl_moe/params.js';
import { seededBytes, type SynthTensor } from './safetensors_writer.js';

type Json = Record<string, unknown>;

/** hidden 32, moe_intermediate 48 (not square), 2 layers, 4 experts; vision depth 1. */
export function tinyConfig(text: Json = {}, top: Json = {}): Json {
  return {
    architectures: ['Qwen3VLMoeForConditionalGeneration'],
    model_type: 'qwen3_vl_moe',
    dtype: 'bfloat16',
    image_token_id: 30,
    video_token_id: 31,
    vision_start_token_id: 28,
    vision_end_token_id: 29,
    tie_word_embeddings: false,
    text_config: {
      vocab_size: 32,
      hidden_size: 32,
      intermediate_size: 64,
      moe_intermediate_size: 48,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 16,
      num_local_experts: 4,
      num_experts_per_tok: 2,
      norm_topk_prob: true,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
      rms_norm_eps: 1e-6,
      hidden_act: 'silu',
      max_position_embeddings: 256,
      rope_parameters: { rope_type: 'default', rope_theta: 5e6, mrope_section: [4, 2, 2], mrope_interleaved: true },
      ...text,
    },
    vision_config: {
      depth: 1,
      hidden_size: 16,
      intermediate_size: 32,
      num_heads: 1,
      in_channels: 3,
      patch_size: 2,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      out_hidden_size: 32,
      num_position_embeddings: 4,
      deepstack_visual_indexes: [0],
      hidden_act: 'gelu_pytorch_tanh',
    },
    ...top,
  };
}

let seedCounter = 1;
const nextSeed = () => seedCounter++ * 7919;

function floats(n: number, lo: number, hi: number): Float32Array {
  const b = seededBytes(n * 2, nextSeed());
  return Float32Array.from({ length: n }, (_, i) => lo + ((b[2 * i] | (b[2 * i + 1] << 8)) / 65535) * (hi - lo));
}

export function bf16Tensor(name: string, shape: number[], dtype: 'BF16' | 'F32' = 'BF16'): SynthTensor {
  const v = floats(
    shape.reduce((a, b) => a * b, 1),
    -1,
    1,
  );
  return { name, dtype, shape, data: dtype === 'BF16' ? f32ArrayToBf16Bytes(v) : f32ArrayToBytes(v) };
}

export function f32Tensor(name: string, shape: number[], lo = 0.001, hi = 0.01): SynthTensor {
  return {
    name,
    dtype: 'F32',
    shape,
    data: f32ArrayToBytes(
      floats(
        Math.max(
          1,
          shape.reduce((a, b) => a * b, 1),
        ),
        lo,
        hi,
      ),
    ),
  };
}

/** Random E4M3 bytes: any code but the NaNs (0x7f, 0xff). */
function fp8Bytes(n: number): Uint8Array {
  return seededBytes(n, nextSeed()).map((b) => ((b & 0x7f) === 0x7f ? b ^ 1 : b));
}

/** Positive E4M3 block scales between 2^-4 and 2^3. */
function blockScaleBytes(n: number): Uint8Array {
  return seededBytes(n, nextSeed()).map((b) => 0x18 + (b % 0x30));
}

/** Produces the tensors of one linear module [N, K]; `share` keys values that fused rows must share (AWQ). */
export type Encoder = (module: string, n: number, k: number, share: string) => SynthTensor[];

const sharedPreQuant = new Map<string, Float32Array>();

const nvfp4ModelOpt: Encoder = (m, n, k) => [
  { name: `${m}.weight`, dtype: 'U8', shape: [n, k / 2], data: seededBytes((n * k) / 2, nextSeed()) },
  { name: `${m}.weight_scale`, dtype: 'F8_E4M3', shape: [n, k / 16], data: blockScaleBytes((n * k) / 16) },
  f32Tensor(`${m}.weight_scale_2`, []),
  f32Tensor(`${m}.input_scale`, []),
];

export const encoders = {
  bf16: (m, n, k) => [bf16Tensor(`${m}.weight`, [n, k])],
  nvfp4ModelOpt,
  nvfp4SeedNames: (m, n, k) =>
    nvfp4ModelOpt(m, n, k, '').map((t) => (t.name.endsWith('.weight') ? { ...t, name: `${t.name}_packed` } : t)),
  nvfp4Awq: (m, n, k, share) => {
    const key = `${share}:${k}`; // gate and up of one expert share x, hence one scale; down reads another x
    if (!sharedPreQuant.has(key)) sharedPreQuant.set(key, floats(k, 0.5, 2));
    const pq: SynthTensor = {
      name: `${m}.pre_quant_scale`,
      dtype: 'BF16',
      shape: [k],
      data: f32ArrayToBf16Bytes(sharedPreQuant.get(key)!),
    };
    return [...nvfp4ModelOpt(m, n, k, share), pq];
  },
  nvfp4Ct: (m, n, k) => [
    { name: `${m}.weight_packed`, dtype: 'U8', shape: [n, k / 2], data: seededBytes((n * k) / 2, nextSeed()) },
    { name: `${m}.weight_scale`, dtype: 'F8_E4M3', shape: [n, k / 16], data: blockScaleBytes((n * k) / 16) },
    f32Tensor(`${m}.weight_global_scale`, [1], 100, 1000),
    f32Tensor(`${m}.input_global_scale`, [1], 100, 1000),
  ],
  fp8Tensor: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale`, []),
    f32Tensor(`${m}.input_scale`, []),
  ],
  fp8Channel: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale`, [n]),
  ],
  fp8PbWo: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale`, [Math.ceil(n / 128), 1, Math.ceil(k / 128), 1]),
  ],
  ctFp8Tensor: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale`, [1]),
    f32Tensor(`${m}.input_scale`, [1]),
  ],
  ctFp8Channel: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale`, [n, 1]),
  ],
  /** DeepSeek-style blocks of 16×16 here, so the tiny shapes span several blocks and a partial one. */
  fp8BlockInv: (m, n, k) => [
    { name: `${m}.weight`, dtype: 'F8_E4M3', shape: [n, k], data: fp8Bytes(n * k) },
    f32Tensor(`${m}.weight_scale_inv`, [Math.ceil(n / 16), Math.ceil(k / 16)]),
  ],
} satisfies Record<string, Encoder>;

/**
 * fused_nk: BF16 [E,2I,H] + [E,H,I] (transformers 5). fused_kn: BF16 [E,H,2I] + [E,I,H] (Hub).
 * proj_first / index_first: per-expert modules encoded like the other linears.
 * fused_nvfp4_nk / fused_nvfp4_kn: Llama4/GPT-OSS-style packed stacks with `<proj>_weight_scale` etc.
 */
export type ExpertLayout = 'fused_nk' | 'fused_kn' | 'proj_first' | 'index_first' | 'fused_nvfp4_nk' | 'fused_nvfp4_kn';

export interface SynthOptions {
  encoder: Encoder;
  experts: ExpertLayout;
  /** Dtype of dense tensors (norms, embeddings, vision). */
  denseDtype?: 'BF16' | 'F32';
}

export function synthTensors(config: Json, opts: SynthOptions): SynthTensor[] {
  const parsed = parseQwen3VlMoeConfig(config);
  const out: SynthTensor[] = [];
  for (const p of qwen3VlMoeParams(parsed)) {
    if (p.kind === 'dense') out.push(bf16Tensor(p.name, p.shape, opts.denseDtype ?? 'BF16'));
    else if (p.kind === 'linear') {
      const module = p.name.replace(/\.weight$/, '');
      out.push(
        ...(p.isQuantizable ? opts.encoder(module, p.shape[0], p.shape[1], module) : [bf16Tensor(p.name, p.shape)]),
      );
    } else out.push(...expertTensors(p.name, p.shape as [number, number, number], opts));
  }
  return out;
}

function expertTensors(param: string, [E, N, K]: [number, number, number], opts: SynthOptions): SynthTensor[] {
  const base = param.slice(0, param.lastIndexOf('.'));
  const proj = param.slice(param.lastIndexOf('.') + 1);
  const projs = proj === 'gate_up_proj' ? ['gate_proj', 'up_proj'] : ['down_proj'];
  const rows = N / projs.length;
  switch (opts.experts) {
    case 'fused_nk':
      return [bf16Tensor(param, [E, N, K])];
    case 'fused_kn':
      return [bf16Tensor(param, [E, K, N])];
    case 'proj_first':
    case 'index_first': {
      const out: SynthTensor[] = [];
      for (let e = 0; e < E; e++) {
        for (const pr of projs) {
          const module = opts.experts === 'proj_first' ? `${base}.${pr}.${e}` : `${base}.${e}.${pr}`;
          out.push(...opts.encoder(module, rows, K, `${base}.${e}`));
        }
      }
      return out;
    }
    case 'fused_nvfp4_nk':
    case 'fused_nvfp4_kn': {
      const nk = opts.experts === 'fused_nvfp4_nk';
      return [
        {
          name: param,
          dtype: 'U8',
          shape: nk ? [E, N, K / 2] : [E, K / 2, N],
          data: seededBytes((E * N * K) / 2, nextSeed()),
        },
        {
          name: `${param}_weight_scale`,
          dtype: 'F8_E4M3',
          shape: nk ? [E, N, K / 16] : [E, K / 16, N],
          data: blockScaleBytes((E * N * K) / 16),
        },
        f32Tensor(`${param}_weight_scale_2`, [E]),
        f32Tensor(`${param}_input_scale`, []),
      ];
    }
  }
}

export const modelOptHfQuantConfig = (
  algo: string,
  exclude: string[] = ['lm_head', 'model.visual*', '*.mlp.gate'],
) => ({
  producer: { name: 'modelopt', version: '0.43.0' },
  quantization: { quant_algo: algo, kv_cache_quant_algo: null, group_size: 16, exclude_modules: exclude },
});

export const ctQuantConfig = (format: string, weights: Json) => ({
  quant_method: 'compressed-tensors',
  format,
  config_groups: { group_0: { targets: ['Linear'], weights } },
  ignore: ['lm_head', 're:.*mlp.gate$', 're:model.visual.*'],
});

// The Qwen3-VL-MoE rule table: every checkpoint name we know, mapped onto a parameter from params.ts. One rule per
// source layout, each a full-name template (compiled to an anchored regex by loader/rules.ts). Order does not
// matter: a tensor matching two rules is an error.
import type { ModelWeightSpec } from '../../loader/model_spec.js';
import {
  type Fields,
  type IgnoreRule,
  oneOf,
  quantSuffixes,
  type Slot,
  suffixRole,
  type WeightRule,
} from '../../loader/rules.js';
import type { Qwen3VlMoeConfig } from './config.js';
import { qwen3VlMoeParams, textPrefix as T, visionPrefix as V } from './params.js';

export const rulesFile = 'models/qwen3_vl_moe/weights.ts';

/** A linear module's tensor: `.bias` is its own dense parameter, everything else belongs to `.weight`. */
function linearModuleSlot(module: string, suffix: string): Slot {
  if (suffix === 'bias') return { param: `${module}.bias`, role: 'data', layout: 'whole', expert: null, segment: null };
  return { param: `${module}.weight`, role: suffixRole(suffix), layout: 'whole', expert: null, segment: null };
}

function denseSlot(param: string): Slot {
  return { param, role: 'data', layout: 'whole', expert: null, segment: null };
}

const expertProjs: Record<string, { param: string; segment: string }> = {
  gate_proj: { param: 'gate_up_proj', segment: 'gate' },
  up_proj: { param: 'gate_up_proj', segment: 'up' },
  down_proj: { param: 'down_proj', segment: 'down' },
};

function expertSliceSlot(f: Fields): Slot {
  const { param, segment } = expertProjs[f.proj];
  return {
    param: `${T}.layers.${f.layer}.mlp.experts.${param}`,
    role: suffixRole(f.suffix),
    layout: 'expert_slice',
    expert: Number(f.expert),
    segment,
  };
}

const linearSuffixes = oneOf(...quantSuffixes, 'bias');
const fusedScaleSuffixes = oneOf(...quantSuffixes.filter((s) => s !== 'weight' && s !== 'weight_packed'));

export const qwen3VlMoeRules: WeightRule[] = [
  {
    name: 'text_embed_tokens',
    template: `${T}.embed_tokens.weight`,
    example: `${T}.embed_tokens.weight`,
    description: 'token embedding table [vocab, H]',
    resolve: () => denseSlot(`${T}.embed_tokens.weight`),
  },
  {
    name: 'text_final_norm',
    template: `${T}.norm.weight`,
    example: `${T}.norm.weight`,
    description: 'final RMSNorm before lm_head',
    resolve: () => denseSlot(`${T}.norm.weight`),
  },
  {
    name: 'lm_head',
    template: 'lm_head.{suffix}',
    example: 'lm_head.weight',
    description: 'output projection [vocab, H] (kept BF16)',
    resolve: (f) => linearModuleSlot('lm_head', f.suffix),
  },
  {
    name: 'text_layer_norms',
    template: `${T}.layers.{layer}.{norm}.weight`,
    fields: { norm: oneOf('input_layernorm', 'post_attention_layernorm') },
    example: `${T}.layers.3.post_attention_layernorm.weight`,
    description: 'RMSNorm before attention / before the MLP',
    resolve: (f) => denseSlot(`${T}.layers.${f.layer}.${f.norm}.weight`),
  },
  {
    name: 'text_qk_norms',
    template: `${T}.layers.{layer}.self_attn.{norm}.weight`,
    fields: { norm: oneOf('q_norm', 'k_norm') },
    example: `${T}.layers.0.self_attn.k_norm.weight`,
    description: 'per-head RMSNorm on q and k [head_dim]',
    resolve: (f) => denseSlot(`${T}.layers.${f.layer}.self_attn.${f.norm}.weight`),
  },
  {
    name: 'text_attn_proj',
    template: `${T}.layers.{layer}.self_attn.{proj}.{suffix}`,
    fields: { proj: oneOf('q_proj', 'k_proj', 'v_proj', 'o_proj'), suffix: linearSuffixes },
    example: `${T}.layers.2.self_attn.o_proj.weight_scale_2`,
    description: 'attention projections and their quantization scales',
    resolve: (f) => linearModuleSlot(`${T}.layers.${f.layer}.self_attn.${f.proj}`, f.suffix),
  },
  {
    name: 'text_router',
    template: `${T}.layers.{layer}.mlp.gate.{suffix}`,
    example: `${T}.layers.1.mlp.gate.weight`,
    description: 'MoE router [E, H] (kept BF16)',
    resolve: (f) => linearModuleSlot(`${T}.layers.${f.layer}.mlp.gate`, f.suffix),
  },
  {
    name: 'text_dense_mlp',
    template: `${T}.layers.{layer}.mlp.{proj}.{suffix}`,
    fields: { proj: oneOf('gate_proj', 'up_proj', 'down_proj'), suffix: linearSuffixes },
    example: `${T}.layers.0.mlp.down_proj.weight`,
    description: 'dense MLP of layers in mlp_only_layers',
    resolve: (f) => linearModuleSlot(`${T}.layers.${f.layer}.mlp.${f.proj}`, f.suffix),
  },
  {
    name: 'experts_fused',
    template: `${T}.layers.{layer}.mlp.experts.{proj}`,
    fields: { proj: oneOf('gate_up_proj', 'down_proj') },
    example: `${T}.layers.0.mlp.experts.gate_up_proj`,
    description:
      'all experts in one tensor: BF16 [E,2I,H]/[E,H,I] (transformers 5, x·Wᵀ) or [E,H,2I]/[E,I,H] (Hub, x·W), or packed NVFP4/FP8 (Llama4/GPT-OSS style); orientation from the shapes',
    resolve: (f) => ({
      param: `${T}.layers.${f.layer}.mlp.experts.${f.proj}`,
      role: 'data',
      layout: 'fused_experts',
      expert: null,
      segment: null,
    }),
  },
  {
    name: 'experts_fused_scales',
    template: `${T}.layers.{layer}.mlp.experts.{proj}_{suffix}`,
    fields: { proj: oneOf('gate_up_proj', 'down_proj'), suffix: fusedScaleSuffixes },
    example: `${T}.layers.0.mlp.experts.gate_up_proj_weight_scale_2`,
    description:
      'scales of fused quantized experts (Llama4/GPT-OSS style `<proj>_weight_scale`, `_weight_scale_2`, ...)',
    resolve: (f) => ({
      param: `${T}.layers.${f.layer}.mlp.experts.${f.proj}`,
      role: suffixRole(f.suffix),
      layout: 'fused_experts',
      expert: null,
      segment: null,
    }),
  },
  {
    name: 'experts_proj_first',
    template: `${T}.layers.{layer}.mlp.experts.{proj}.{expert}.{suffix}`,
    fields: { proj: oneOf('gate_proj', 'up_proj', 'down_proj') },
    example: `${T}.layers.0.mlp.experts.down_proj.0.weight_scale_2`,
    description: 'ModelOpt per-expert export, projection before expert index',
    resolve: expertSliceSlot,
  },
  {
    name: 'experts_index_first',
    template: `${T}.layers.{layer}.mlp.experts.{expert}.{proj}.{suffix}`,
    fields: { proj: oneOf('gate_proj', 'up_proj', 'down_proj') },
    example: `${T}.layers.0.mlp.experts.7.gate_proj.weight_packed`,
    description: 'per-expert modules, expert index before projection (nn.ModuleList style, compressed-tensors)',
    resolve: expertSliceSlot,
  },
  {
    name: 'vision_patch_embed',
    template: `${V}.patch_embed.proj.{suffix}`,
    fields: { suffix: oneOf('weight', 'bias') },
    example: `${V}.patch_embed.proj.weight`,
    description: 'Conv3d patch embedding [D, C, T, P, P] + bias',
    resolve: (f) => denseSlot(`${V}.patch_embed.proj.${f.suffix}`),
  },
  {
    name: 'vision_pos_embed',
    template: `${V}.pos_embed.weight`,
    example: `${V}.pos_embed.weight`,
    description: 'learned position embeddings [num_position_embeddings, D]',
    resolve: () => denseSlot(`${V}.pos_embed.weight`),
  },
  {
    name: 'vision_block_norms',
    template: `${V}.blocks.{block}.{norm}.{suffix}`,
    fields: { norm: oneOf('norm1', 'norm2'), suffix: oneOf('weight', 'bias') },
    example: `${V}.blocks.0.norm2.bias`,
    description: 'LayerNorms of each vision block',
    resolve: (f) => denseSlot(`${V}.blocks.${f.block}.${f.norm}.${f.suffix}`),
  },
  {
    name: 'vision_block_linears',
    template: `${V}.blocks.{block}.{linear}.{suffix}`,
    fields: { linear: oneOf('attn.qkv', 'attn.proj', 'mlp.linear_fc1', 'mlp.linear_fc2'), suffix: linearSuffixes },
    example: `${V}.blocks.2.attn.qkv.bias`,
    description: 'attention and MLP linears of each vision block',
    resolve: (f) => linearModuleSlot(`${V}.blocks.${f.block}.${f.linear}`, f.suffix),
  },
  {
    name: 'vision_merger',
    template: `${V}.merger.{part}.{suffix}`,
    fields: { part: oneOf('norm', 'linear_fc1', 'linear_fc2'), suffix: linearSuffixes },
    example: `${V}.merger.linear_fc2.weight`,
    description: 'patch merger (2×2 → text hidden)',
    resolve: (f) =>
      f.part === 'norm'
        ? denseSlot(`${V}.merger.norm.${f.suffix}`)
        : linearModuleSlot(`${V}.merger.${f.part}`, f.suffix),
  },
  {
    name: 'vision_deepstack_mergers',
    template: `${V}.deepstack_merger_list.{index}.{part}.{suffix}`,
    fields: { part: oneOf('norm', 'linear_fc1', 'linear_fc2'), suffix: linearSuffixes },
    example: `${V}.deepstack_merger_list.1.norm.weight`,
    description: 'DeepStack mergers feeding vision features into early decoder layers',
    resolve: (f) => {
      const m = `${V}.deepstack_merger_list.${f.index}`;
      return f.part === 'norm' ? denseSlot(`${m}.norm.${f.suffix}`) : linearModuleSlot(`${m}.${f.part}`, f.suffix);
    },
  },
];

export const qwen3VlMoeIgnoreRules: IgnoreRule[] = [
  {
    name: 'kv_cache_scales',
    template: `${T}.layers.{layer}.self_attn.{owner}{kv}`,
    fields: { owner: oneOf('', 'k_proj.', 'v_proj.'), kv: oneOf('k_scale', 'v_scale') },
    example: `${T}.layers.0.self_attn.k_proj.k_scale`,
    reason: 'FP8 KV-cache scales; dawnllm keeps the KV cache in 16-bit floats, where they are not needed',
  },
];

/** Tied embeddings: a checkpoint may still carry lm_head.weight, which is then a copy nobody reads. */
const tiedLmHeadRule: IgnoreRule = {
  name: 'tied_lm_head',
  template: 'lm_head.weight',
  example: 'lm_head.weight',
  reason: 'tie_word_embeddings is true: the output projection reuses embed_tokens',
};

export function qwen3VlMoeWeightSpec(config: Qwen3VlMoeConfig): ModelWeightSpec {
  const tied = config.text.tieWordEmbeddings;
  return {
    architecture: 'qwen3_vl_moe',
    rulesFile,
    params: qwen3VlMoeParams(config),
    rules: tied ? qwen3VlMoeRules.filter((r) => r.name !== 'lm_head') : qwen3VlMoeRules,
    ignoreRules: tied ? [...qwen3VlMoeIgnoreRules, tiedLmHeadRule] : qwen3VlMoeIgnoreRules,
  };
}

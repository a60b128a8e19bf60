// The JSON files next to the weights, as a ModelOpt NVFP4 export of Qwen3-VL-MoE has them: config.json in the
// transformers 5 spelling (num_local_experts, rope_parameters, dtype) with its quantization_config,
// hf_quant_config.json, generation_config.json and preprocessor_config.json (Qwen3-VL's real values).
import type { SynthSpec } from './spec.js';
import { addedTokenId } from './special_tokens.js';

/** What ModelOpt leaves unquantized in Qwen3-VL-MoE: lm_head, the vision tower, embeddings and the routers. */
const excludeModules = ['lm_head', 'model.visual*', 'model.language_model.embed_tokens', '*.mlp.gate'];

export function configJson(s: SynthSpec): Record<string, unknown> {
  const id = (t: string) => addedTokenId(s.vocab, t);
  return {
    architectures: ['Qwen3VLMoeForConditionalGeneration'],
    model_type: 'qwen3_vl_moe',
    dtype: 'bfloat16',
    image_token_id: id('<|image_pad|>'),
    video_token_id: id('<|video_pad|>'),
    vision_start_token_id: id('<|vision_start|>'),
    vision_end_token_id: id('<|vision_end|>'),
    tie_word_embeddings: false,
    text_config: {
      model_type: 'qwen3_vl_moe_text',
      vocab_size: s.vocab,
      hidden_size: s.hidden,
      intermediate_size: 3 * s.hidden, // unused: every layer is MoE (6144 in the 30B)
      moe_intermediate_size: s.moeIntermediate,
      num_hidden_layers: s.layers,
      num_attention_heads: s.heads,
      num_key_value_heads: s.kvHeads,
      head_dim: s.headDim,
      num_local_experts: s.experts,
      num_experts_per_tok: s.topK,
      norm_topk_prob: true,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
      hidden_act: 'silu',
      rms_norm_eps: 1e-6,
      attention_bias: false,
      attention_dropout: 0.0,
      max_position_embeddings: s.maxPositions,
      initializer_range: 0.02,
      router_aux_loss_coef: 0.001,
      use_cache: true,
      bos_token_id: id('<|endoftext|>'),
      eos_token_id: id('<|im_end|>'),
      tie_word_embeddings: false,
      rope_parameters: {
        rope_type: 'default',
        rope_theta: s.ropeTheta,
        mrope_section: s.mropeSection,
        mrope_interleaved: true,
      },
    },
    vision_config: {
      model_type: 'qwen3_vl_moe_vision',
      depth: s.visionDepth,
      hidden_size: s.visionHidden,
      intermediate_size: s.visionIntermediate,
      num_heads: s.visionHeads,
      in_channels: 3,
      patch_size: 16,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      out_hidden_size: s.hidden,
      num_position_embeddings: s.visionPositions,
      deepstack_visual_indexes: s.deepstack,
      hidden_act: 'gelu_pytorch_tanh',
      initializer_range: 0.02,
    },
    transformers_version: '5.0.0',
    quantization_config: {
      quant_method: 'modelopt',
      quant_algo: 'NVFP4',
      group_size: 16,
      kv_cache_quant_algo: null,
      ignore: excludeModules,
      producer: { name: 'modelopt', version: '0.43.0' },
    },
  };
}

export function hfQuantConfigJson(): Record<string, unknown> {
  return {
    producer: { name: 'modelopt', version: '0.43.0' },
    quantization: { quant_algo: 'NVFP4', kv_cache_quant_algo: null, group_size: 16, exclude_modules: excludeModules },
  };
}

export function generationConfigJson(s: SynthSpec): Record<string, unknown> {
  const eot = addedTokenId(s.vocab, '<|endoftext|>');
  return {
    bos_token_id: eot,
    pad_token_id: eot,
    do_sample: true,
    eos_token_id: [addedTokenId(s.vocab, '<|im_end|>'), eot],
    top_k: 20,
    top_p: 0.8,
    temperature: 0.7,
    repetition_penalty: 1.0,
  };
}

/** Qwen3-VL's processor: 16-pixel patches merged 2×2, 65,536 … 16,777,216 pixels per image. */
export function preprocessorConfigJson(): Record<string, unknown> {
  return {
    image_processor_type: 'Qwen2VLImageProcessorFast',
    patch_size: 16,
    temporal_patch_size: 2,
    merge_size: 2,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    do_rescale: true,
    do_normalize: true,
    do_resize: true,
    size: { shortest_edge: 65536, longest_edge: 16777216 },
    processor_class: 'Qwen3VLProcessor',
  };
}

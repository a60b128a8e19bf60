// Every parameter the Qwen3-VL-MoE forward pass reads, text and vision, with the shapes the config implies.
// Names follow the Hugging Face checkpoint (transformers 5 layout), so most tensors map by rule onto the same name.
import type { ParamSpec } from '../../loader/model_spec.js';
import type { Qwen3VlMoeConfig, Qwen3VlMoeTextConfig } from './config.js';

export const textPrefix = 'model.language_model';
export const visionPrefix = 'model.visual';

/** A layer uses experts unless listed in mlp_only_layers or skipped by decoder_sparse_step (transformers' rule). */
export function isMoeLayer(text: Qwen3VlMoeTextConfig, layer: number): boolean {
  return !text.mlpOnlyLayers.includes(layer) && text.numExperts > 0 && (layer + 1) % text.decoderSparseStep === 0;
}

export function qwen3VlMoeParams(config: Qwen3VlMoeConfig): ParamSpec[] {
  return [...textParams(config.text), ...visionParams(config)];
}

function textParams(t: Qwen3VlMoeTextConfig): ParamSpec[] {
  const H = t.hiddenSize;
  const dense = (name: string, shape: number[]): ParamSpec => ({
    name,
    kind: 'dense',
    shape,
    isQuantizable: false,
    group: 'text',
  });
  const linear = (name: string, n: number, k: number, isQuantizable = true): ParamSpec => ({
    name,
    kind: 'linear',
    shape: [n, k],
    isQuantizable,
    group: 'text',
  });
  const out: ParamSpec[] = [dense(`${textPrefix}.embed_tokens.weight`, [t.vocabSize, H])];
  const qDim = t.numAttentionHeads * t.headDim;
  const kvDim = t.numKeyValueHeads * t.headDim;
  for (let l = 0; l < t.numHiddenLayers; l++) {
    const p = `${textPrefix}.layers.${l}`;
    out.push(
      dense(`${p}.input_layernorm.weight`, [H]),
      linear(`${p}.self_attn.q_proj.weight`, qDim, H),
      linear(`${p}.self_attn.k_proj.weight`, kvDim, H),
      linear(`${p}.self_attn.v_proj.weight`, kvDim, H),
      linear(`${p}.self_attn.o_proj.weight`, H, qDim),
      dense(`${p}.self_attn.q_norm.weight`, [t.headDim]),
      dense(`${p}.self_attn.k_norm.weight`, [t.headDim]),
      dense(`${p}.post_attention_layernorm.weight`, [H]),
    );
    if (isMoeLayer(t, l)) {
      const E = t.numExperts;
      const I = t.moeIntermediateSize;
      // The router stays BF16: its logits pick experts, and every NVFP4 export we know leaves it alone.
      out.push(linear(`${p}.mlp.gate.weight`, E, H, false));
      out.push({
        name: `${p}.mlp.experts.gate_up_proj`,
        kind: 'experts',
        shape: [E, 2 * I, H],
        isQuantizable: true,
        segments: [
          { name: 'gate', rows: I },
          { name: 'up', rows: I },
        ],
        group: 'text',
      });
      out.push({
        name: `${p}.mlp.experts.down_proj`,
        kind: 'experts',
        shape: [E, H, I],
        isQuantizable: true,
        segments: [{ name: 'down', rows: H }],
        group: 'text',
      });
    } else {
      const I = t.intermediateSize;
      out.push(
        linear(`${p}.mlp.gate_proj.weight`, I, H),
        linear(`${p}.mlp.up_proj.weight`, I, H),
        linear(`${p}.mlp.down_proj.weight`, H, I),
      );
    }
  }
  out.push(dense(`${textPrefix}.norm.weight`, [H]));
  if (!t.tieWordEmbeddings) out.push(linear('lm_head.weight', t.vocabSize, H, false));
  return out;
}

function visionParams(config: Qwen3VlMoeConfig): ParamSpec[] {
  const v = config.vision;
  const D = v.hiddenSize;
  const merged = D * v.spatialMergeSize ** 2;
  const out: ParamSpec[] = [];
  const dense = (name: string, shape: number[]) =>
    out.push({ name, kind: 'dense', shape, isQuantizable: false, group: 'vision' });
  // Vision linears stay BF16 (no export we read quantizes them); a quantized one is reported, not loaded.
  const linear = (module: string, n: number, k: number) => {
    out.push({ name: `${module}.weight`, kind: 'linear', shape: [n, k], isQuantizable: false, group: 'vision' });
    dense(`${module}.bias`, [n]);
  };
  const layerNorm = (module: string, n: number) => {
    dense(`${module}.weight`, [n]);
    dense(`${module}.bias`, [n]);
  };
  dense(`${visionPrefix}.patch_embed.proj.weight`, [D, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
  dense(`${visionPrefix}.patch_embed.proj.bias`, [D]);
  dense(`${visionPrefix}.pos_embed.weight`, [v.numPositionEmbeddings, D]);
  for (let b = 0; b < v.depth; b++) {
    const p = `${visionPrefix}.blocks.${b}`;
    layerNorm(`${p}.norm1`, D);
    layerNorm(`${p}.norm2`, D);
    linear(`${p}.attn.qkv`, 3 * D, D);
    linear(`${p}.attn.proj`, D, D);
    linear(`${p}.mlp.linear_fc1`, v.intermediateSize, D);
    linear(`${p}.mlp.linear_fc2`, D, v.intermediateSize);
  }
  // The final merger normalizes before the 2×2 shuffle (width D); the deepstack mergers after it (width 4D).
  layerNorm(`${visionPrefix}.merger.norm`, D);
  linear(`${visionPrefix}.merger.linear_fc1`, merged, merged);
  linear(`${visionPrefix}.merger.linear_fc2`, v.outHiddenSize, merged);
  v.deepstackVisualIndexes.forEach((_, i) => {
    const p = `${visionPrefix}.deepstack_merger_list.${i}`;
    layerNorm(`${p}.norm`, merged);
    linear(`${p}.linear_fc1`, merged, merged);
    linear(`${p}.linear_fc2`, v.outHiddenSize, merged);
  });
  return out;
}

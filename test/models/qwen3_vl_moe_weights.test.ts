// Every rule of the Qwen3-VL-MoE table matches its own example, no other rule matches it, and each real
// checkpoint layout hits the rule meant for it.
import { describe, expect, it } from 'vitest';
import { compileRule, matchRule } from '../../loader/rules.js';
import { qwen3VlMoeIgnoreRules, qwen3VlMoeRules } from '../../models/qwen3_vl_moe/weights.js';

const all = [...qwen3VlMoeRules, ...qwen3VlMoeIgnoreRules].map(compileRule);
const hits = (name: string) => all.filter((c) => matchRule(c, name)).map((c) => c.rule.name);
const slot = (name: string) => {
  const c = all.find((r) => matchRule(r, name));
  if (!c || !('resolve' in c.rule)) return null;
  return c.rule.resolve(matchRule(c, name)!);
};
const T = 'model.language_model.layers.3';

describe('Qwen3-VL-MoE rule table', () => {
  it('has unique rule names', () => {
    const names = all.map((c) => c.rule.name);
    expect(new Set(names).size).toBe(names.length);
  });

  for (const c of all) {
    it(`${c.rule.name} matches its example and no other rule does`, () => {
      expect(hits(c.rule.example)).toEqual([c.rule.name]);
    });
  }

  it('maps ModelOpt projection-first and index-first expert names onto the same slot', () => {
    const a = slot(`${T}.mlp.experts.up_proj.5.weight_scale_2`);
    const b = slot(`${T}.mlp.experts.5.up_proj.weight_scale_2`);
    expect(a).toEqual({
      param: `${T}.mlp.experts.gate_up_proj`,
      role: 'weight_scale_2',
      layout: 'expert_slice',
      expert: 5,
      segment: 'up',
    });
    expect(b).toEqual(a);
    expect(slot(`${T}.mlp.experts.down_proj.0.weight_packed`)).toMatchObject({
      param: `${T}.mlp.experts.down_proj`,
      role: 'data',
      segment: 'down',
    });
  });

  it('tells the 0-D per-expert scale from the fused weight (the vLLM substring bug)', () => {
    expect(hits(`${T}.mlp.experts.down_proj.0.weight_scale_2`)).toEqual(['experts_proj_first']);
    expect(hits(`${T}.mlp.experts.down_proj`)).toEqual(['experts_fused']);
    expect(hits(`${T}.mlp.experts.down_proj_weight_scale_2`)).toEqual(['experts_fused_scales']);
    expect(slot(`${T}.mlp.experts.gate_up_proj_weight_scale`)).toMatchObject({
      role: 'weight_scale',
      layout: 'fused_experts',
    });
  });

  it('keeps the router apart from gate_proj, and biases apart from weights', () => {
    expect(hits(`${T}.mlp.gate.weight`)).toEqual(['text_router']);
    expect(hits(`${T}.mlp.gate_proj.weight`)).toEqual(['text_dense_mlp']);
    expect(slot('model.visual.blocks.1.attn.qkv.bias')).toMatchObject({
      param: 'model.visual.blocks.1.attn.qkv.bias',
      role: 'data',
    });
    expect(slot(`${T}.self_attn.q_proj.input_global_scale`)).toMatchObject({
      param: `${T}.self_attn.q_proj.weight`,
      role: 'input_global_scale',
    });
  });

  it('matches names only as a whole', () => {
    expect(hits(`${T}.mlp.experts.down_proj.0.weight_scale_2.extra`)).toEqual([]);
    expect(hits(`prefix.${T}.self_attn.q_proj.weight`)).toEqual([]);
    expect(hits(`${T}.self_attn.q_proj.weightx`)).toEqual([]);
    expect(hits(`${T}.mlp.experts.gate_proj.x.weight`)).toEqual([]);
    expect(hits(`${T}.self_attn.k_proj.k_scale`)).toEqual(['kv_cache_scales']);
    expect(hits(`${T}.self_attn.v_scale`)).toEqual(['kv_cache_scales']);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { isMoeLayer, qwen3VlMoeParams } from '../../models/qwen3_vl_moe/params.js';
import { findFixture } from '../helpers/fixtures.js';

const bf16Dir = findFixture('qwen3vlmoe-tiny/bf16');

describe.skipIf(!bf16Dir)('Qwen3-VL-MoE parameter list', () => {
  const json = () => JSON.parse(readFileSync(join(bf16Dir!, 'config.json'), 'utf8'));

  it('lists every tensor the tiny checkpoint holds, with its shape', () => {
    const params = qwen3VlMoeParams(parseQwen3VlMoeConfig(json()));
    const index = JSON.parse(readFileSync(join(bf16Dir!, 'model.safetensors.index.json'), 'utf8'));
    expect(params.map((p) => p.name).sort()).toEqual(Object.keys(index.weight_map).sort());
    const byName = new Map(params.map((p) => [p.name, p]));
    const L = 'model.language_model.layers.2';
    expect(byName.get(`${L}.self_attn.q_proj.weight`)).toMatchObject({
      kind: 'linear',
      shape: [128, 128],
      isQuantizable: true,
    });
    expect(byName.get(`${L}.self_attn.k_proj.weight`)!.shape).toEqual([64, 128]);
    expect(byName.get(`${L}.self_attn.q_norm.weight`)!.shape).toEqual([32]);
    expect(byName.get(`${L}.mlp.gate.weight`)).toMatchObject({ kind: 'linear', shape: [8, 128], isQuantizable: false });
    expect(byName.get(`${L}.mlp.experts.gate_up_proj`)).toMatchObject({
      kind: 'experts',
      shape: [8, 192, 128],
      segments: [
        { name: 'gate', rows: 96 },
        { name: 'up', rows: 96 },
      ],
    });
    expect(byName.get(`${L}.mlp.experts.down_proj`)!.shape).toEqual([8, 128, 96]);
    expect(byName.get('lm_head.weight')).toMatchObject({ shape: [2048, 128], isQuantizable: false });
    expect(byName.get('model.visual.patch_embed.proj.weight')!.shape).toEqual([64, 3, 2, 16, 16]);
    expect(byName.get('model.visual.merger.norm.weight')!.shape).toEqual([64]);
    expect(byName.get('model.visual.deepstack_merger_list.1.norm.weight')!.shape).toEqual([256]);
    expect(byName.get('model.visual.merger.linear_fc2.weight')!.shape).toEqual([128, 256]);
    expect(params.filter((p) => p.group === 'vision').every((p) => !p.isQuantizable)).toBe(true);
  });

  it('gives dense-MLP layers gate/up/down and drops lm_head when embeddings are tied', () => {
    const c = json();
    c.text_config.mlp_only_layers = [1];
    c.text_config.tie_word_embeddings = true;
    const config = parseQwen3VlMoeConfig(c);
    expect(isMoeLayer(config.text, 1)).toBe(false);
    const names = qwen3VlMoeParams(config).map((p) => p.name);
    expect(names).toContain('model.language_model.layers.1.mlp.up_proj.weight');
    expect(names).not.toContain('model.language_model.layers.1.mlp.experts.gate_up_proj');
    expect(names).not.toContain('model.language_model.layers.1.mlp.gate.weight');
    expect(names).not.toContain('lm_head.weight');
  });
});

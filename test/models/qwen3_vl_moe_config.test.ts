import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../core/errors.js';
import { parseQwen3VlMoeConfig, readQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { findFixture, missingFixtureReason } from '../helpers/fixtures.js';

const bf16Dir = findFixture('qwen3vlmoe-tiny/bf16');
const hubDir = findFixture('qwen3vlmoe-tiny/bf16-hub');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function t5Config(): Json {
  return JSON.parse(readFileSync(join(bf16Dir!, 'config.json'), 'utf8'));
}

/** The Hub release spelling of the same config, made from the transformers 5 one. */
function hubConfig(): Json {
  const c = t5Config();
  const t = c.text_config;
  t.num_experts = t.num_local_experts;
  delete t.num_local_experts;
  const { rope_theta, ...scaling } = t.rope_parameters;
  t.rope_theta = rope_theta;
  t.rope_scaling = scaling;
  delete t.rope_parameters;
  c.torch_dtype = c.dtype;
  delete c.dtype;
  return c;
}

function parseError(c: Json): string {
  try {
    parseQwen3VlMoeConfig(c, 'config.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe.skipIf(!bf16Dir)('Qwen3-VL-MoE config', () => {
  it('parses the transformers 5 spelling', async () => {
    const c = await readQwen3VlMoeConfig(bf16Dir!);
    expect(c.text).toMatchObject({
      vocabSize: 2048,
      hiddenSize: 128,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 32,
      numExperts: 8,
      numExpertsPerTok: 2,
      moeIntermediateSize: 96,
      normTopkProb: true,
      ropeTheta: 5e6,
      mropeSection: [6, 5, 5],
      mropeInterleaved: true,
      tieWordEmbeddings: false,
    });
    expect(c.vision).toMatchObject({
      depth: 3,
      hiddenSize: 64,
      numHeads: 2,
      patchSize: 16,
      deepstackVisualIndexes: [0, 1],
    });
    expect(c.dtype).toBe('bfloat16');
    expect(c.imageTokenId).toBe(2042);
  });

  it('parses the Hub release spelling to the same values', () => {
    expect(parseQwen3VlMoeConfig(hubConfig())).toEqual(parseQwen3VlMoeConfig(t5Config()));
  });

  it.skipIf(!hubDir)('reads the real bf16-hub config.json', async () => {
    if (!hubDir) console.log(`skipping: ${missingFixtureReason('qwen3vlmoe-tiny/bf16-hub')}`);
    expect(await readQwen3VlMoeConfig(hubDir!)).toEqual(parseQwen3VlMoeConfig(t5Config()));
  });

  it('names the missing or unsupported field', () => {
    const missing = t5Config();
    delete missing.text_config.hidden_size;
    expect(parseError(missing)).toMatch(
      /config\.json: text_config\.hidden_size: expected an integer ≥ 1, found nothing/,
    );
    const act = t5Config();
    act.text_config.hidden_act = 'gelu';
    expect(parseError(act)).toMatch(/text_config\.hidden_act: expected one of "silu", found "gelu"/);
    const noExperts = t5Config();
    delete noExperts.text_config.num_local_experts;
    expect(parseError(noExperts)).toMatch(/text_config\.num_local_experts: expected an integer/);
    const both = hubConfig();
    both.text_config.num_local_experts = 16;
    expect(parseError(both)).toMatch(/num_local_experts 16 and num_experts 8 disagree/);
    const noRope = t5Config();
    delete noRope.text_config.rope_parameters;
    expect(parseError(noRope)).toMatch(/expected rope_parameters \(transformers 5\) or rope_scaling \+ rope_theta/);
    const section = t5Config();
    section.text_config.rope_parameters.mrope_section = [8, 8, 8];
    expect(parseError(section)).toMatch(/mrope_section \[8,8,8\] sums to 24, expected head_dim \/ 2 = 16/);
    const yarn = t5Config();
    yarn.text_config.rope_parameters.rope_type = 'yarn';
    expect(parseError(yarn)).toMatch(/rope_parameters\.rope_type: expected one of "default", "mrope", found "yarn"/);
    const other = t5Config();
    other.model_type = 'qwen3_vl';
    expect(parseError(other)).toMatch(/model_type: expected one of "qwen3_vl_moe", found "qwen3_vl"/);
    const deep = t5Config();
    deep.vision_config.deepstack_visual_indexes = [0, 5];
    expect(parseError(deep)).toMatch(/deepstack_visual_indexes \[5\] are not below depth 3/);
  });
});

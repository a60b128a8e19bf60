// Parses a Qwen3-VL-MoE config.json once, in either spelling: the Hub release (`num_experts`, `rope_scaling` +
// `rope_theta`, `torch_dtype`) or transformers 5 (`num_local_experts`, `rope_parameters`, `dtype`). Everything
// downstream reads these typed fields, never the JSON.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '../../core/errors.js';

export interface Qwen3VlMoeTextConfig {
  vocabSize: number;
  hiddenSize: number;
  /** Dense MLP width, used only by layers listed in mlpOnlyLayers or skipped by decoderSparseStep. */
  intermediateSize: number;
  moeIntermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  numExperts: number;
  numExpertsPerTok: number;
  normTopkProb: boolean;
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
  rmsNormEps: number;
  ropeTheta: number;
  mropeSection: [number, number, number];
  mropeInterleaved: boolean;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
}

export interface Qwen3VlMoeVisionConfig {
  depth: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  inChannels: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  outHiddenSize: number;
  numPositionEmbeddings: number;
  deepstackVisualIndexes: number[];
  hiddenAct: 'gelu_pytorch_tanh';
}

export interface Qwen3VlMoeConfig {
  text: Qwen3VlMoeTextConfig;
  vision: Qwen3VlMoeVisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  /** The checkpoint's stated compute dtype (`dtype` or `torch_dtype`). */
  dtype: 'bfloat16' | 'float16' | 'float32';
}

type Json = Record<string, unknown>;

/** Reads fields of one JSON object and names the file and key path in every error. */
class FieldReader {
  constructor(
    private readonly obj: Json,
    private readonly path: string,
    private readonly source: string,
  ) {}

  private fail(key: string, expected: string, found: unknown): never {
    const shown = found === undefined ? 'nothing' : JSON.stringify(found);
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `${this.source}: ${this.path}${key}: expected ${expected}, found ${shown}`,
    );
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  int(key: string, opts: { min?: number; fallback?: number } = {}): number {
    const v = this.obj[key] ?? opts.fallback;
    const min = opts.min ?? 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `an integer ≥ ${min}`, v);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, 'a positive number', v);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.obj[key] ?? fallback;
    if (typeof v !== 'string') this.fail(key, 'a string', v);
    return v;
  }

  ints(key: string, fallback?: number[]): number[] {
    const v = this.obj[key] ?? fallback;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) {
      this.fail(key, 'a list of non-negative integers', v);
    }
    return v as number[];
  }

  child(key: string): FieldReader {
    const v = this.obj[key];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'an object', v);
    return new FieldReader(v as Json, `${this.path}${key}.`, this.source);
  }

  /** Fails on a field whose value dawnllm does not implement. */
  only<T>(key: string, allowed: readonly T[], value: T): void {
    if (!allowed.includes(value)) this.fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
}

export function parseQwen3VlMoeConfig(json: unknown, source = 'config.json'): Qwen3VlMoeConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelError('DAWN_ERR_MODEL_CONFIG', `${source}: expected a JSON object`);
  }
  const root = new FieldReader(json as Json, '', source);
  root.only('model_type', ['qwen3_vl_moe'], root.str('model_type'));
  const text = parseText(root.child('text_config'), root);
  const vision = parseVision(root.child('vision_config'));
  const dtype = root.has('dtype') ? root.str('dtype') : root.str('torch_dtype', 'bfloat16');
  const dtypes = ['bfloat16', 'float16', 'float32'] as const;
  root.only(root.has('dtype') ? 'dtype' : 'torch_dtype', dtypes, dtype as (typeof dtypes)[number]);
  return {
    text,
    vision,
    imageTokenId: root.int('image_token_id', { min: 0 }),
    videoTokenId: root.int('video_token_id', { min: 0 }),
    visionStartTokenId: root.int('vision_start_token_id', { min: 0 }),
    visionEndTokenId: root.int('vision_end_token_id', { min: 0 }),
    dtype: dtype as Qwen3VlMoeConfig['dtype'],
  };
}

function parseText(t: FieldReader, root: FieldReader): Qwen3VlMoeTextConfig {
  t.only('hidden_act', ['silu'], t.str('hidden_act', 'silu'));
  t.only('attention_bias', [false], t.bool('attention_bias', false));
  const numExperts = parseNumExperts(t);
  const rope = parseRope(t);
  const headDim = t.int('head_dim');
  const half = headDim / 2;
  const sectionSum = rope.mropeSection.reduce((a, b) => a + b, 0);
  if (sectionSum !== half) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config mrope_section [${rope.mropeSection}] sums to ${sectionSum}, expected head_dim / 2 = ${half}`,
    );
  }
  const numLayers = t.int('num_hidden_layers');
  const tie = t.has('tie_word_embeddings') ? t.bool('tie_word_embeddings') : root.bool('tie_word_embeddings', false);
  const cfg: Qwen3VlMoeTextConfig = {
    vocabSize: t.int('vocab_size'),
    hiddenSize: t.int('hidden_size'),
    intermediateSize: t.int('intermediate_size'),
    moeIntermediateSize: t.int('moe_intermediate_size'),
    numHiddenLayers: numLayers,
    numAttentionHeads: t.int('num_attention_heads'),
    numKeyValueHeads: t.int('num_key_value_heads'),
    headDim,
    numExperts,
    numExpertsPerTok: t.int('num_experts_per_tok'),
    normTopkProb: t.bool('norm_topk_prob', true),
    decoderSparseStep: t.int('decoder_sparse_step', { fallback: 1 }),
    mlpOnlyLayers: t.ints('mlp_only_layers', []),
    rmsNormEps: t.num('rms_norm_eps'),
    ...rope,
    maxPositionEmbeddings: t.int('max_position_embeddings'),
    tieWordEmbeddings: tie,
  };
  if (cfg.numAttentionHeads % cfg.numKeyValueHeads !== 0) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config: num_attention_heads ${cfg.numAttentionHeads} is not a multiple of num_key_value_heads ${cfg.numKeyValueHeads}`,
    );
  }
  if (cfg.numExpertsPerTok > numExperts) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config: num_experts_per_tok ${cfg.numExpertsPerTok} exceeds the ${numExperts} experts`,
    );
  }
  const outOfRange = cfg.mlpOnlyLayers.filter((l) => l >= numLayers);
  if (outOfRange.length) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config: mlp_only_layers [${outOfRange}] are not below num_hidden_layers ${numLayers}`,
    );
  }
  return cfg;
}

/** transformers 5 writes num_local_experts; the Hub release wrote num_experts. Both present must agree. */
function parseNumExperts(t: FieldReader): number {
  const local = t.has('num_local_experts') ? t.int('num_local_experts') : null;
  const hub = t.has('num_experts') ? t.int('num_experts') : null;
  if (local !== null && hub !== null && local !== hub) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config: num_local_experts ${local} and num_experts ${hub} disagree`,
    );
  }
  const n = local ?? hub;
  if (n === null) return t.int('num_local_experts'); // throws, naming the transformers-5 key
  return n;
}

type RopeFields = Pick<Qwen3VlMoeTextConfig, 'ropeTheta' | 'mropeSection' | 'mropeInterleaved'>;

/** transformers 5: rope_parameters {rope_theta, mrope_section, ...}; Hub: rope_theta + rope_scaling {mrope_section, ...}. */
function parseRope(t: FieldReader): RopeFields {
  const params = t.has('rope_parameters') ? t.child('rope_parameters') : null;
  const scaling = t.has('rope_scaling') ? t.child('rope_scaling') : null;
  const r = params ?? scaling;
  if (!r) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      'config text_config: expected rope_parameters (transformers 5) or rope_scaling + rope_theta (Hub release), found neither',
    );
  }
  r.only('rope_type', ['default', 'mrope'], r.str('rope_type', 'default'));
  const ropeTheta = params?.has('rope_theta') ? params.num('rope_theta') : t.num('rope_theta');
  const section = r.ints('mrope_section');
  if (section.length !== 3) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config text_config mrope_section: expected 3 entries (t, h, w), found [${section}]`,
    );
  }
  return {
    ropeTheta,
    mropeSection: [section[0], section[1], section[2]],
    mropeInterleaved: r.bool('mrope_interleaved', false),
  };
}

function parseVision(v: FieldReader): Qwen3VlMoeVisionConfig {
  v.only('hidden_act', ['gelu_pytorch_tanh'], v.str('hidden_act', 'gelu_pytorch_tanh') as 'gelu_pytorch_tanh');
  const depth = v.int('depth');
  const indexes = v.ints('deepstack_visual_indexes', []);
  const bad = indexes.filter((i) => i >= depth);
  if (bad.length) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config vision_config deepstack_visual_indexes [${bad}] are not below depth ${depth}`,
    );
  }
  const numPos = v.int('num_position_embeddings');
  if (!Number.isInteger(Math.sqrt(numPos))) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CONFIG',
      `config vision_config num_position_embeddings: expected a square number (a side × side grid), found ${numPos}`,
    );
  }
  return {
    depth,
    hiddenSize: v.int('hidden_size'),
    intermediateSize: v.int('intermediate_size'),
    numHeads: v.int('num_heads'),
    inChannels: v.int('in_channels', { fallback: 3 }),
    patchSize: v.int('patch_size'),
    temporalPatchSize: v.int('temporal_patch_size'),
    spatialMergeSize: v.int('spatial_merge_size'),
    outHiddenSize: v.int('out_hidden_size'),
    numPositionEmbeddings: numPos,
    deepstackVisualIndexes: indexes,
    hiddenAct: 'gelu_pytorch_tanh',
  };
}

/** Reads and parses `<dir>/config.json`. */
export async function readQwen3VlMoeConfig(dir: string): Promise<Qwen3VlMoeConfig> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelError('DAWN_ERR_MODEL_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelError('DAWN_ERR_MODEL_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseQwen3VlMoeConfig(json, path);
}

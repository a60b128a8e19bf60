// tools/make_synthetic_checkpoint.ts: a tiny checkpoint made by it is a clean ModelOpt NVFP4 load (every tensor
// consumed by a named rule), its tokenizer loads with exactly vocab_size ids and round-trips text, the GPU model
// gives finite logits, and serve's loadRunner accepts it. The 30B preset is checked by its plan alone (names,
// shapes, bytes, shards), and the NVFP4 scales by the variance they give a weight.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLoadReport } from '../../loader/load_report.js';
import { planLoad } from '../../loader/load_plan.js';
import { Tokenizer } from '../../models/common/tokenizer.js';
import { readQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { Qwen3VlMoeModel } from '../../models/qwen3_vl_moe/model.js';
import { loadRunner } from '../../models/qwen3_vl_moe/runner.js';
import { qwen3VlMoeWeightSpec } from '../../models/qwen3_vl_moe/weights.js';
import { makeSyntheticCheckpoint, parseCliArgs } from '../../tools/make_synthetic_checkpoint.js';
import { shardFileBytes, splitShards } from '../../tools/synthetic/shards.js';
import { addedTokenId } from '../../tools/synthetic/special_tokens.js';
import { presets, specFromFlags } from '../../tools/synthetic/spec.js';
import {
  BLOCK_SCALE_MAX_CODE,
  BLOCK_SCALE_MIN_CODE,
  e4m3Value,
  planTensors,
  tensorChunks,
} from '../../tools/synthetic/tensors.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { makeTempDir } from '../loader/safetensors_writer.js';
import { TestSeq } from '../models/qwen3_vl_moe_model_helpers.js';

const tiny = specFromFlags({
  preset: 'small',
  layers: '2',
  hidden: '64',
  heads: '2',
  'kv-heads': '1',
  'head-dim': '32',
  experts: '4',
  'top-k': '2',
  'moe-intermediate': '32',
  vocab: '600',
  'vision-depth': '1',
  'vision-hidden': '32',
  'vision-heads': '1',
  'vision-intermediate': '64',
  'vision-positions': '16',
  'max-shard-bytes': String(200_000), // several shards + index
});

const root = await makeTempDir('dawnllm-synth-');
const dir = join(root, 'tiny');
const made = makeSyntheticCheckpoint(dir, tiny);
const gpu = await gpuOrSkip();
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the synthetic checkpoint on disk', () => {
  it('is a clean ModelOpt NVFP4 load: every tensor consumed by a named rule, nothing ignored or unmatched', async () => {
    const config = await readQwen3VlMoeConfig(dir);
    expect(config.text).toMatchObject({ hiddenSize: 64, numExperts: 4, numExpertsPerTok: 2, vocabSize: 600 });
    expect(config.text.mropeSection).toEqual([6, 5, 5]); // the 30B's 24:20:20 proportions
    const plan = await planLoad(dir, qwen3VlMoeWeightSpec(config));
    try {
      const report = buildLoadReport(plan);
      expect(report.format).toMatch(/^ModelOpt NVFP4/);
      expect(report.problems).toEqual([]);
      expect(report.files.length).toBeGreaterThan(2);
      for (const f of report.files) expect(f.bytes).toBeLessThanOrEqual(200_000);
      expect(report.tensors.length).toBe(made.tensors);
      expect(report.tensors.filter((t) => t.status !== 'consumed')).toEqual([]);
      expect(report.totals.ignoredBytes).toBe(0);
      const experts = report.tensors.filter((t) => t.rule === 'experts_proj_first');
      expect(experts.length).toBe(2 * 4 * 3 * 4); // layers × experts × projections × (weight, scales ×2, input)
      expect(experts.map((t) => t.name)).toContain(
        'model.language_model.layers.1.mlp.experts.down_proj.3.weight_scale_2',
      );
    } finally {
      await plan.checkpoint.close();
    }
  });

  it('has a tokenizer of exactly vocab_size ids that round-trips text and decodes every id', () => {
    const tok = Tokenizer.load(dir);
    expect(tok.vocabSize).toBe(600);
    expect(tok.eosTokenId).toBe(addedTokenId(600, '<|im_end|>'));
    expect(tok.tokenToId('<|image_pad|>')).toBe(addedTokenId(600, '<|image_pad|>'));
    const text = 'Hello, the quick brown fox — ünïcödé 😀\n<|im_start|>user\nhi<|im_end|>';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids).toContain(addedTokenId(600, '<|im_start|>'));
    expect(tok.decode(ids)).toBe(text);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(text).length); // merges apply
    for (let id = 0; id < 600; id++) expect(typeof tok.decode([id])).toBe('string');
  });

  it('writes the same bytes for the same seed and other bytes for another', () => {
    const t = planTensors(tiny).find((x) => x.name.endsWith('layers.0.self_attn.q_proj.weight'))!;
    const bytes = (seed: number) => Buffer.concat([...tensorChunks(t, seed, 1024)]);
    expect(bytes(1).equals(bytes(1))).toBe(true);
    expect(bytes(1).equals(bytes(2))).toBe(false);
    expect(bytes(1).length).toBe(t.bytes);
  });
});

describe('the 30B preset plan', () => {
  const spec = presets['30b'];
  const tensors = planTensors(spec);
  const byName = new Map(tensors.map((t) => [t.name, t]));

  it('has the real names and shapes of Qwen3-VL-30B-A3B in ModelOpt NVFP4', () => {
    const l = 'model.language_model.layers.47';
    expect(byName.get(`${l}.mlp.experts.gate_proj.127.weight`)).toMatchObject({ dtype: 'U8', shape: [768, 1024] });
    expect(byName.get(`${l}.mlp.experts.down_proj.0.weight_scale`)).toMatchObject({
      dtype: 'F8_E4M3',
      shape: [2048, 48],
    });
    expect(byName.get(`${l}.self_attn.q_proj.weight`)).toMatchObject({ shape: [4096, 1024] });
    expect(byName.get(`${l}.self_attn.k_proj.weight_scale_2`)).toMatchObject({ dtype: 'F32', shape: [] });
    expect(byName.get(`${l}.mlp.gate.weight`)).toMatchObject({ dtype: 'BF16', shape: [128, 2048] });
    expect(byName.get('lm_head.weight')).toMatchObject({ dtype: 'BF16', shape: [151936, 2048] });
    expect(byName.get('model.visual.blocks.26.mlp.linear_fc1.weight')).toMatchObject({ shape: [4304, 1152] });
    expect(byName.get('model.visual.pos_embed.weight')).toMatchObject({ shape: [2304, 1152] });
    expect(byName.get('model.visual.deepstack_merger_list.2.linear_fc2.weight')).toMatchObject({ shape: [2048, 4608] });
    expect(byName.has('model.language_model.layers.48.input_layernorm.weight')).toBe(false);
  });

  it('is about 19 GB in shards of at most 4 GiB', () => {
    const total = tensors.reduce((n, t) => n + t.bytes, 0);
    expect(total).toBeGreaterThan(18e9);
    expect(total).toBeLessThan(20e9);
    const shards = splitShards(tensors, spec.maxShardBytes);
    for (const s of shards) expect(shardFileBytes(s)).toBeLessThanOrEqual(4 * 2 ** 30); // header included
    expect(shards.length).toBe(5);
    expect(shards.flat().length).toBe(tensors.length);
  });

  it('gives NVFP4 weights E[w²]·K ≈ 1 (each projection keeps unit variance)', () => {
    const m = 'model.language_model.layers.0.mlp.experts.down_proj.5';
    const codes = Buffer.concat([...tensorChunks(byName.get(`${m}.weight`)!, spec.seed)]);
    const scales = Buffer.concat([...tensorChunks(byName.get(`${m}.weight_scale`)!, spec.seed)]);
    const g = Buffer.concat([...tensorChunks(byName.get(`${m}.weight_scale_2`)!, spec.seed)]).readFloatLE(0);
    const e2m1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
    const K = 768;
    let sum = 0;
    let [lo, hi] = [Infinity, -Infinity];
    for (let i = 0; i < codes.length; i++) {
      const row = Math.floor((2 * i) / K);
      const s = e4m3Value(scales[row * (K / 16) + Math.floor(((2 * i) % K) / 16)]);
      lo = Math.min(lo, s);
      hi = Math.max(hi, s);
      sum += (e2m1[codes[i] & 7] * s * g) ** 2 + (e2m1[(codes[i] >> 4) & 7] * s * g) ** 2;
    }
    expect([lo, hi]).toEqual([e4m3Value(BLOCK_SCALE_MIN_CODE), e4m3Value(BLOCK_SCALE_MAX_CODE)]);
    const meanSquareTimesK = (sum / (2 * codes.length)) * K;
    expect(meanSquareTimesK).toBeGreaterThan(0.95);
    expect(meanSquareTimesK).toBeLessThan(1.05);
  });
});

describe('the command line', () => {
  it('parses the directory, presets and overrides, and names unknown flags', () => {
    const { dir: out, flags } = parseCliArgs(['/tmp/x', '--preset', '30b', '--layers=4', '--experts', '32']);
    expect(out).toBe('/tmp/x');
    expect(specFromFlags(flags)).toMatchObject({ layers: 4, experts: 32, hidden: 2048, vocab: 151936 });
    expect(() => parseCliArgs(['/tmp/x', '--layer', '4'])).toThrow(/unknown flag --layer/);
    expect(() => specFromFlags({ preset: 'huge' })).toThrow(/--preset huge/);
    expect(() => specFromFlags({ 'top-k': '99' })).toThrow(/top-k 99 exceeds 16 experts/);
  });
});

describe.skipIf(!gpu)('on the GPU', { timeout: 60_000 }, () => {
  it('loads into the GPU model and a prefill + decode give finite logits and a bounded residual stream', async () => {
    const model = await Qwen3VlMoeModel.load(gpu!, dir, { numKvBlocks: 4, maxTokens: 16, maxSeqs: 1 });
    try {
      expect(model.format).toMatch(/NVFP4/);
      const seq = new TestSeq(0, 4);
      const prompt = [5, 77, 300, 511, 2, 42, 99, 598];
      const r = await model.forward({ seqs: [seq.step(prompt)], captureHidden: true });
      seq.advance(prompt.length);
      expect(r.logits.length).toBe(600);
      expect(r.logits.every(Number.isFinite)).toBe(true);
      const rms = r.hidden!.map((h) => Math.sqrt(h.reduce((s, v) => s + v * v, 0) / h.length));
      for (const v of rms) {
        expect(v).toBeGreaterThan(0.3);
        expect(v).toBeLessThan(5);
      }
      const d = await model.forward({ seqs: [seq.step([7])] });
      expect(d.logits.every(Number.isFinite)).toBe(true);
    } finally {
      model.release();
    }
  });

  it("is accepted by serve's loadRunner", async () => {
    const loaded = await loadRunner({
      modelDir: dir,
      maxModelLen: null,
      maxNumSeqs: 2,
      maxNumBatchedTokens: 32,
      gpuMemoryUtilization: 0.9,
      dtype: 'auto',
      quantization: 'auto',
      kvCacheDtype: 'auto',
      device: null,
    });
    try {
      expect(loaded.format).toMatch(/NVFP4/);
      expect(loaded.runner.vocabSize).toBe(600);
      // The 30B preprocessor config allows 16.7 MP images; lavapipe's 128 MiB binding does not hold them in the
      // vision tower, so the checkpoint's bound is lowered to what fits, and said so.
      if (gpu!.caps.maxStorageBufferBindingSize < 2 ** 30)
        expect(loaded.loadSummary.join('\n')).toMatch(/lowered from the checkpoint's 16777216 to fit/);
    } finally {
      await loaded.runner.release();
    }
  });
});

// Each way a checkpoint can fail to map onto the model is an error that names the tensor (and its file) or the
// parameter, before anything is uploaded.
import { stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoaderError } from '../../core/errors.js';
import { loadDir } from './load_helpers.js';
import { encodeRaw, makeTempDir, type SynthTensor, writeCheckpoint } from './safetensors_writer.js';
import {
  bf16Tensor,
  type Encoder,
  encoders,
  type ExpertLayout,
  f32Tensor,
  modelOptHfQuantConfig,
  synthTensors,
  tinyConfig,
} from './synthetic_model.js';

type Json = Record<string, unknown>;
const L0 = 'model.language_model.layers.0';

interface Setup {
  encoder?: Encoder;
  experts?: ExpertLayout;
  text?: Json;
  top?: Json;
  hfQuantConfig?: Json | null;
  mutate?: (t: SynthTensor[]) => SynthTensor[];
  numShards?: number;
}

async function writeSetup(s: Setup): Promise<string> {
  const config = tinyConfig(s.text ?? {}, s.top ?? {});
  const tensors = synthTensors(config, {
    encoder: s.encoder ?? encoders.nvfp4ModelOpt,
    experts: s.experts ?? 'proj_first',
  });
  const hfQuantConfig = s.hfQuantConfig === null ? undefined : (s.hfQuantConfig ?? modelOptHfQuantConfig('NVFP4'));
  return writeCheckpoint(await makeTempDir(), {
    config,
    hfQuantConfig,
    tensors: s.mutate ? s.mutate(tensors) : tensors,
    numShards: s.numShards ?? 2,
  });
}

async function loadError(dirOrSetup: string | Setup): Promise<LoaderError> {
  const dir = typeof dirOrSetup === 'string' ? dirOrSetup : await writeSetup(dirOrSetup);
  try {
    await loadDir(dir);
  } catch (err) {
    if (!(err instanceof LoaderError)) throw err;
    return err;
  }
  throw new Error('expected the load to fail');
}

const drop = (name: string) => (ts: SynthTensor[]) => {
  expect(
    ts.some((t) => t.name === name),
    `fixture has ${name}`,
  ).toBe(true);
  return ts.filter((t) => t.name !== name);
};
const replace = (name: string, make: (t: SynthTensor) => SynthTensor) => (ts: SynthTensor[]) =>
  ts.map((t) => (t.name === name ? make(t) : t));

describe('load failures name what is wrong', () => {
  it('a missing weight_scale_2 for one expert', async () => {
    const err = await loadError({ mutate: drop(`${L0}.mlp.experts.gate_proj.1.weight_scale_2`) });
    expect(err.code).toBe('DAWN_ERR_LOADER_MISSING_SCALE');
    expect(err.message).toContain(`"${L0}.mlp.experts.gate_proj.1.weight" U8 [48, 16] (model-0000`);
    expect(err.message).toContain(`"${L0}.mlp.experts.gate_proj.1.weight_scale_2" is missing`);
    expect(err.message).toMatch(/nothing was uploaded/);
  });

  it('an extra unknown tensor, and a short list plus a count for many', async () => {
    const extra = (n: number) => (ts: SynthTensor[]) => [
      ...ts,
      ...Array.from({ length: n }, (_, i) => f32Tensor(`${L0}.mlp.shared_expert.${i}.weight`, [2])),
    ];
    const one = await loadError({ mutate: extra(1) });
    expect(one.code).toBe('DAWN_ERR_LOADER_UNMATCHED_TENSOR');
    expect(one.message).toMatch(
      /1 tensors matched no rule: "model\.language_model\.layers\.0\.mlp\.shared_expert\.0\.weight"/,
    );
    expect(one.message).toMatch(
      /\(model-0000\d-of-00002\.safetensors\) matched no rule in models\/qwen3_vl_moe\/weights\.ts; closest:/,
    );
    const many = await loadError({ mutate: extra(11) });
    expect(many.message).toMatch(/11 tensors matched no rule: .* and 5 more/);
  });

  it('a truncated shard', async () => {
    const dir = await writeSetup({});
    const shard = join(dir, 'model-00002-of-00002.safetensors');
    await truncate(shard, (await stat(shard)).size - 100);
    const err = await loadError(dir);
    expect(err.code).toBe('DAWN_ERR_LOADER_CORRUPT_FILE');
    expect(err.message).toMatch(
      /model-00002-of-00002\.safetensors is corrupt: tensor ".*" ends at data byte \d+ but the file holds only \d+ data bytes/,
    );
  });

  it('a header whose offsets lie', async () => {
    const dir = await writeSetup({ numShards: 1 });
    const lie = encodeRaw(
      {
        'model.language_model.norm.weight': { dtype: 'BF16', shape: [32], data_offsets: [0, 64] },
        'lm_head.weight': { dtype: 'BF16', shape: [16], data_offsets: [32, 64] },
      },
      new Uint8Array(64),
    );
    await writeFile(join(dir, 'model.safetensors'), lie);
    expect((await loadError(dir)).message).toMatch(
      /model\.safetensors is corrupt: tensors "model\.language_model\.norm\.weight" and "lm_head\.weight" overlap/,
    );
  });

  it('a wrong shape', async () => {
    const name = `${L0}.self_attn.q_proj.weight_scale`;
    const err = await loadError({
      mutate: replace(name, (t) => ({ ...t, shape: [16, 4], data: t.data.subarray(0, 64) })),
    });
    expect(err.code).toBe('DAWN_ERR_LOADER_SHAPE_MISMATCH');
    expect(err.message).toMatch(
      new RegExp(
        `"${name.replace(/\./g, '\\.')}" F8_E4M3 \\[16, 4\\] \\(model-0000\\d-of-00002\\.safetensors\\): expected \\[32, 2\\]`,
      ),
    );
  });

  it('a 0-D scale where block scales are expected (the vLLM transpose crash)', async () => {
    const name = `${L0}.mlp.experts.down_proj.0.weight_scale`;
    const err = await loadError({ mutate: replace(name, () => f32Tensor(name, [])) });
    expect(err.message).toMatch(
      new RegExp(`"${name.replace(/\./g, '\\.')}" F32 \\[\\] .*: expected \\[32, 3\\] \\(E4M3 block scales`),
    );
  });

  it('a 0-D scale where per-channel FP8 scales are expected', async () => {
    const name = `${L0}.self_attn.o_proj.weight_scale`;
    const err = await loadError({
      encoder: encoders.fp8Channel,
      hfQuantConfig: modelOptHfQuantConfig('FP8_PER_CHANNEL_PER_TOKEN'),
      mutate: replace(name, () => f32Tensor(name, [])),
    });
    expect(err.message).toMatch(
      /o_proj\.weight_scale" F32 \[\] .*: expected \[32\] or \[32, 1\] \(channel scales per hf_quant_config\.json\)/,
    );
  });

  it('an unknown quantization scheme', async () => {
    const err = await loadError({
      hfQuantConfig: null,
      top: { quantization_config: { quant_method: 'gptq', bits: 4 } },
    });
    expect(err.code).toBe('DAWN_ERR_LOADER_UNKNOWN_QUANT_SCHEME');
    expect(err.message).toMatch(/config\.json quantization_config: unsupported quantization quant_method "gptq"/);
    const algo = await loadError({ hfQuantConfig: modelOptHfQuantConfig('W4A8_AWQ') });
    expect(algo.message).toMatch(/hf_quant_config\.json: unsupported quantization ModelOpt quant_algo "W4A8_AWQ"/);
  });

  it('a duplicate: one expert slice under both naming schemes', async () => {
    const dup = (ts: SynthTensor[]) => [
      ...ts,
      ...ts
        .filter((t) => t.name.startsWith(`${L0}.mlp.experts.up_proj.2.`))
        .map((t) => ({ ...t, name: t.name.replace('up_proj.2.', '2.up_proj.') })),
    ];
    const err = await loadError({ mutate: dup });
    expect(err.code).toBe('DAWN_ERR_LOADER_DUPLICATE');
    expect(err.message).toMatch(
      /expert 2 up" gets its data from both "model\.language_model\.layers\.0\.mlp\.experts\.up_proj\.2\.weight" .*\(rule experts_proj_first\) and .*2\.up_proj\.weight" .*\(rule experts_index_first\)/,
    );
  });

  it('a missing parameter and a missing expert', async () => {
    const err = await loadError({
      mutate: (ts) =>
        ts.filter(
          (t) => t.name !== 'model.language_model.norm.weight' && !t.name.startsWith(`${L0}.mlp.experts.down_proj.3.`),
        ),
    });
    expect(err.code).toBe('DAWN_ERR_LOADER_CHECK_FAILED');
    expect(err.message).toMatch(/1 parameters no tensor fills: "model\.language_model\.norm\.weight"/);
    expect(err.message).toMatch(
      /expert 3 has no down tensors \(expected "model\.language_model\.layers\.0\.mlp\.experts\.down_proj\.3\.weight"\)/,
    );
  });

  it('a quantized tensor the config excludes, and one dawnllm keeps BF16', async () => {
    const excluded = await loadError({
      hfQuantConfig: modelOptHfQuantConfig('NVFP4', ['lm_head', 'model.visual*', '*.mlp.gate', '*.self_attn.q_proj']),
    });
    expect(excluded.message).toMatch(
      /"model\.language_model\.layers\.0\.self_attn\.q_proj\.weight" is stored NVFP4 but hf_quant_config\.json excludes module ".*q_proj" \(pattern "\*\.self_attn\.q_proj"\)/,
    );
    const lmHead = await loadError({
      mutate: (ts) => [
        ...ts.filter((t) => t.name !== 'lm_head.weight'),
        ...encoders.nvfp4ModelOpt('lm_head', 32, 32, ''),
      ],
    });
    expect(lmHead.message).toMatch(/parameter "lm_head\.weight" is stored NVFP4 but dawnllm keeps it BF16/);
  });

  it('packed NVFP4 tensors under an FP8 config', async () => {
    const err = await loadError({ hfQuantConfig: modelOptHfQuantConfig('FP8') });
    expect(err.code).toBe('DAWN_ERR_LOADER_FORMAT_CONFLICT');
    expect(err.message).toMatch(/is packed NVFP4 but hf_quant_config\.json describes ModelOpt FP8/);
  });

  it('fused experts whose orientation the shapes cannot decide (H == 2I), and mixed orientations', async () => {
    // gate_up [E, 32, 32] is square and the per-expert down slices cannot vote.
    const square = await loadError({
      encoder: encoders.bf16,
      experts: 'fused_nk',
      hfQuantConfig: null,
      text: { moe_intermediate_size: 16 },
      mutate: (ts) =>
        ts.flatMap((t) =>
          t.name.endsWith('experts.down_proj')
            ? [0, 1, 2, 3].map((e) => bf16Tensor(t.name.replace('down_proj', `${e}.down_proj.weight`), [32, 16]))
            : [t],
        ),
    });
    expect(square.code).toBe('DAWN_ERR_LOADER_ORIENTATION_AMBIGUOUS');
    expect(square.message).toMatch(/experts\.gate_up_proj" BF16 \[4, 32, 32\] .* is square in N and K/);
    const mixed = await loadError({
      encoder: encoders.bf16,
      experts: 'fused_nk',
      hfQuantConfig: null,
      mutate: replace(`${L0}.mlp.experts.down_proj`, (t) => bf16Tensor(t.name, [4, 48, 32])),
    });
    expect(mixed.message).toMatch(/fused experts disagree on orientation/);
  });
});

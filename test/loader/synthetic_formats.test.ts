// One synthetic checkpoint per format rule: it must load with every tensor consumed (or ignored by name), and
// every dequantized IR weight must equal what the source tensors mean (synthetic_reference.ts), exactly up to
// f32 rounding (relative 1e-6).
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../loader/dequant.js';
import { bf16BytesToF32Array, decodeFloats } from '../../loader/float_formats.js';
import type { IrTensor } from '../../loader/ir.js';
import type { LoadReport } from '../../loader/load_report.js';
import { parseQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { qwen3VlMoeParams } from '../../models/qwen3_vl_moe/params.js';
import { loadDir, reportFor } from './load_helpers.js';
import { makeTempDir, type SynthTensor, writeCheckpoint } from './safetensors_writer.js';
import {
  ctQuantConfig,
  type Encoder,
  encoders,
  type ExpertLayout,
  f32Tensor,
  modelOptHfQuantConfig,
  synthTensors,
  tinyConfig,
} from './synthetic_model.js';
import { referenceExperts, referenceLinear, type TensorMap } from './synthetic_reference.js';

type Json = Record<string, unknown>;

interface FormatCase {
  name: string;
  encoder: Encoder;
  experts: ExpertLayout;
  quantizationConfig?: Json;
  hfQuantConfig?: Json;
  text?: Json;
  block?: [number, number];
  extra?: (config: Json) => SynthTensor[];
  expectFormat: RegExp;
  expectIr: 'bf16' | 'nvfp4' | 'fp8';
  check?: (w: Map<string, IrTensor>, report: LoadReport) => void;
}

function expectClose(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > 1e-6 * Math.abs(expected[i]) + 1e-30) {
      throw new Error(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

async function runCase(c: FormatCase) {
  const config = tinyConfig(c.text ?? {}, c.quantizationConfig ? { quantization_config: c.quantizationConfig } : {});
  const tensors = [...synthTensors(config, { encoder: c.encoder, experts: c.experts }), ...(c.extra?.(config) ?? [])];
  const dir = await writeCheckpoint(await makeTempDir(), {
    config,
    hfQuantConfig: c.hfQuantConfig,
    tensors,
    numShards: 2,
  });
  const report = await reportFor(dir);
  expect(report.problems).toEqual([]);
  expect(report.format).toMatch(c.expectFormat);
  expect(report.tensors.filter((t) => t.status === 'unmatched' || t.status === 'rejected')).toEqual([]);
  const { weights } = await loadDir(dir);
  const tm: TensorMap = new Map(tensors.map((t) => [t.name, t]));
  for (const p of qwen3VlMoeParams(parseQwen3VlMoeConfig(config))) {
    const ir = weights.get(p.name)!;
    expect(ir.shape, p.name).toEqual(p.shape);
    if (!p.isQuantizable) {
      expect(ir.format, p.name).toBe('bf16');
      const src = tm.get(p.name)!;
      expectClose(
        bf16BytesToF32Array((ir as { data: Uint8Array }).data),
        decodeFloats(src.data, src.dtype, src.name),
        p.name,
      );
      continue;
    }
    expect(ir.format, p.name).toBe(c.expectIr);
    const expected =
      p.kind === 'experts'
        ? referenceExperts(tm, p, c.experts, c.block ?? null)
        : referenceLinear(tm, p.name.replace(/\.weight$/, ''), p.shape[0], p.shape[1], c.block ?? null);
    expectClose(dequantize(ir), expected, p.name);
  }
  c.check?.(weights, report);
}

const gateUp = 'model.language_model.layers.1.mlp.experts.gate_up_proj';
const qProj = 'model.language_model.layers.0.self_attn.q_proj.weight';

const cases: FormatCase[] = [
  {
    name: 'unquantized, transformers 5 fused experts [E,2I,H]',
    encoder: encoders.bf16,
    experts: 'fused_nk',
    expectFormat: /unquantized/,
    expectIr: 'bf16',
  },
  {
    name: 'unquantized, Hub fused experts [E,H,2I] (transposed)',
    encoder: encoders.bf16,
    experts: 'fused_kn',
    expectFormat: /unquantized/,
    expectIr: 'bf16',
    check: (_, r) => expect(r.params.find((p) => p.name === gateUp)!.layout).toMatch(/\[E, K, N\] \(transposed/),
  },
  {
    name: 'unquantized, Hub layout with H == I (square down_proj decided by gate_up)',
    encoder: encoders.bf16,
    experts: 'fused_kn',
    text: { moe_intermediate_size: 32 },
    expectFormat: /unquantized/,
    expectIr: 'bf16',
    check: (_, r) =>
      expect(r.params.find((p) => p.name.endsWith('layers.0.mlp.experts.down_proj'))!.notes.join()).toMatch(
        /orientation kn taken from/,
      ),
  },
  {
    name: 'unquantized per-expert BF16 modules (index first)',
    encoder: encoders.bf16,
    experts: 'index_first',
    expectFormat: /unquantized/,
    expectIr: 'bf16',
  },
  {
    name: 'ModelOpt NVFP4, per-expert projection first',
    encoder: encoders.nvfp4ModelOpt,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('NVFP4'),
    expectFormat: /ModelOpt NVFP4/,
    expectIr: 'nvfp4',
    check: (w) => {
      const t = w.get(gateUp)!;
      if (t.format !== 'nvfp4') throw new Error('nvfp4 expected');
      expect(t.segmentRows).toEqual([48, 48]);
      expect(t.globalScale.byteLength).toBe(2 * 4 * 4);
      expect(t.inputScale!.byteLength).toBe(2 * 4 * 4);
    },
  },
  {
    name: 'ModelOpt NVFP4 in config.json only, index first, weight_packed names',
    encoder: encoders.nvfp4SeedNames,
    experts: 'index_first',
    quantizationConfig: {
      quant_method: 'modelopt',
      quant_algo: 'NVFP4',
      group_size: 16,
      ignore: ['lm_head', 'model.visual*', '*.mlp.gate'],
    },
    expectFormat: /ModelOpt NVFP4/,
    expectIr: 'nvfp4',
  },
  {
    name: 'ModelOpt NVFP4_AWQ: pre_quant_scale kept for the kernel to apply to x',
    encoder: encoders.nvfp4Awq,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('NVFP4_AWQ'),
    expectFormat: /NVFP4_AWQ/,
    expectIr: 'nvfp4',
    check: (w, r) => {
      const t = w.get(gateUp)!;
      if (t.format !== 'nvfp4') throw new Error('nvfp4 expected');
      expect(t.preQuantScale!.byteLength).toBe(4 * 32 * 4); // [E, K] f32
      expect(r.params.find((p) => p.name === qProj)!.notes).toContain(
        'pre_quant_scale kept: kernel multiplies x by it',
      );
    },
  },
  {
    name: 'compressed-tensors nvfp4-pack-quantized (global scale divides)',
    encoder: encoders.nvfp4Ct,
    experts: 'index_first',
    quantizationConfig: ctQuantConfig('nvfp4-pack-quantized', {
      num_bits: 4,
      type: 'float',
      strategy: 'tensor_group',
      group_size: 16,
    }),
    expectFormat: /compressed-tensors nvfp4/,
    expectIr: 'nvfp4',
  },
  {
    name: 'Llama4/GPT-OSS-style fused NVFP4 experts [E,N,K/2] with <proj>_weight_scale',
    encoder: encoders.nvfp4ModelOpt,
    experts: 'fused_nvfp4_nk',
    hfQuantConfig: modelOptHfQuantConfig('NVFP4'),
    expectFormat: /ModelOpt NVFP4/,
    expectIr: 'nvfp4',
  },
  {
    name: 'Llama4-style fused NVFP4 experts stored [E,K/2,N] (byte-transposed)',
    encoder: encoders.nvfp4ModelOpt,
    experts: 'fused_nvfp4_kn',
    hfQuantConfig: modelOptHfQuantConfig('NVFP4'),
    expectFormat: /ModelOpt NVFP4/,
    expectIr: 'nvfp4',
  },
  {
    name: 'ModelOpt FP8 per-tensor, with FP8 KV-cache scales ignored by name',
    encoder: encoders.fp8Tensor,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('FP8'),
    extra: () => [
      f32Tensor('model.language_model.layers.0.self_attn.k_proj.k_scale', []),
      f32Tensor('model.language_model.layers.0.self_attn.v_proj.v_scale', []),
    ],
    expectFormat: /ModelOpt FP8 \(quant_algo FP8, per-tensor/,
    expectIr: 'fp8',
    check: (w, r) => {
      const ignored = r.tensors.filter((t) => t.status === 'ignored');
      expect(ignored.map((t) => t.rule)).toEqual(['kv_cache_scales', 'kv_cache_scales']);
      expect(ignored[0].reason).toMatch(/KV-cache scales/);
      const t = w.get(gateUp)!;
      expect(t.format === 'fp8' && t.scale).toEqual({ granularity: 'tensor' });
    },
  },
  {
    name: 'ModelOpt FP8_PER_CHANNEL_PER_TOKEN',
    encoder: encoders.fp8Channel,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('FP8_PER_CHANNEL_PER_TOKEN'),
    expectFormat: /per-channel/,
    expectIr: 'fp8',
  },
  {
    name: 'ModelOpt FP8_PB_WO with 4-D block scales [N/128,1,K/128,1]',
    encoder: encoders.fp8PbWo,
    experts: 'index_first',
    hfQuantConfig: modelOptHfQuantConfig('fp8_pb_wo'),
    block: [128, 128],
    expectFormat: /FP8_PB_WO, block 128×128/,
    expectIr: 'fp8',
  },
  {
    name: 'compressed-tensors float-quantized FP8, per tensor',
    encoder: encoders.ctFp8Tensor,
    experts: 'index_first',
    quantizationConfig: ctQuantConfig('float-quantized', { num_bits: 8, type: 'float', strategy: 'tensor' }),
    expectFormat: /float-quantized FP8 \(per-tensor/,
    expectIr: 'fp8',
  },
  {
    name: 'compressed-tensors float-quantized FP8, per channel [N,1]',
    encoder: encoders.ctFp8Channel,
    experts: 'index_first',
    quantizationConfig: ctQuantConfig('float-quantized', { num_bits: 8, type: 'float', strategy: 'channel' }),
    expectFormat: /float-quantized FP8 \(per-channel/,
    expectIr: 'fp8',
  },
  {
    name: 'quant_method fp8 with weight_scale_inv blocks (16×16: several blocks, partial ones, gate/up grids apart)',
    encoder: encoders.fp8BlockInv,
    experts: 'index_first',
    quantizationConfig: {
      quant_method: 'fp8',
      fmt: 'e4m3',
      activation_scheme: 'dynamic',
      weight_block_size: [16, 16],
      modules_to_not_convert: ['lm_head', 'model.visual', 'mlp.gate'],
    },
    text: { moe_intermediate_size: 40 },
    block: [16, 16],
    expectFormat: /quant_method fp8, block 16×16/,
    expectIr: 'fp8',
    check: (w) => {
      const t = w.get(gateUp)!;
      expect(t.format === 'fp8' && t.scaleData.byteLength).toBe(4 * 2 * 3 * 2 * 4); // [E, S, ceil(40/16), ceil(32/16)]
    },
  },
];

describe('synthetic checkpoints, one per format rule', () => {
  for (const c of cases) it(c.name, () => runCase(c));

  it('converts F32 dense tensors to BF16 and says so', async () => {
    const config = tinyConfig();
    const tensors = synthTensors(config, { encoder: encoders.bf16, experts: 'fused_nk', denseDtype: 'F32' });
    const dir = await writeCheckpoint(await makeTempDir(), { config, tensors });
    const report = await reportFor(dir);
    expect(report.problems).toEqual([]);
    expect(report.params.find((p) => p.name === 'model.language_model.norm.weight')!.notes).toEqual([
      'converted F32 → BF16',
    ]);
  });
});

// Synthetic checkpoints in the schemes the fixtures lack, uploaded and run through the grouped matvec kernel against
// the loader's CPU dequantization: NVFP4_AWQ (preScale reaches the kernel), compressed-tensors NVFP4 (inverted
// global scale), ModelOpt FP8 per-tensor (gate and up scales as two row blocks), per-channel FP8 (row scales) and
// 16×16 FP8 blocks (a block grid narrower than K). Tolerance: upload_check.ts.
import { describe, expect, it } from 'vitest';
import { loadCheckpointToGpu } from '../../loader/upload.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { loadDir, specFor } from './load_helpers.js';
import { makeTempDir, writeCheckpoint } from './safetensors_writer.js';
import { checkExperts } from './upload_check.js';
import {
  ctQuantConfig,
  type Encoder,
  encoders,
  type ExpertLayout,
  modelOptHfQuantConfig,
  synthTensors,
  tinyConfig,
} from './synthetic_model.js';

const gpu = await gpuOrSkip();
const L = 'model.language_model.layers';

interface Case {
  name: string;
  encoder: Encoder;
  experts: ExpertLayout;
  hfQuantConfig?: Record<string, unknown>;
  quantizationConfig?: Record<string, unknown>;
  /** What the gate_up GpuWeight must look like beyond its format. */
  expect: Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'ModelOpt NVFP4_AWQ (preScale)',
    encoder: encoders.nvfp4Awq,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('NVFP4_AWQ'),
    expect: { format: 'nvfp4', numRowGroups: 2, hasPreScale: true },
  },
  {
    name: 'compressed-tensors NVFP4 (global scale divides)',
    encoder: encoders.nvfp4Ct,
    experts: 'index_first',
    quantizationConfig: ctQuantConfig('nvfp4-pack-quantized', {
      num_bits: 4,
      type: 'float',
      strategy: 'tensor_group',
      group_size: 16,
    }),
    expect: { format: 'nvfp4', numRowGroups: 2, hasPreScale: false },
  },
  {
    name: 'ModelOpt FP8 per tensor',
    encoder: encoders.fp8Tensor,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('FP8'),
    expect: { format: 'fp8', scaleBlock: [48, 32] },
  },
  {
    name: 'ModelOpt FP8 per channel',
    encoder: encoders.fp8Channel,
    experts: 'proj_first',
    hfQuantConfig: modelOptHfQuantConfig('FP8_PER_CHANNEL_PER_TOKEN'),
    expect: { format: 'fp8', scaleBlock: [1, 32] },
  },
  {
    name: 'FP8 weight_scale_inv blocks 16×16',
    encoder: encoders.fp8BlockInv,
    experts: 'index_first',
    quantizationConfig: {
      quant_method: 'fp8',
      fmt: 'e4m3',
      weight_block_size: [16, 16],
      modules_to_not_convert: ['lm_head', 'model.visual', 'mlp.gate'],
    },
    expect: { format: 'fp8', scaleBlock: [16, 16] },
  },
];

describe.skipIf(!gpu)('upload of synthetic checkpoints through matvec', () => {
  const g = gpu!;
  for (const c of cases) {
    it(c.name, async () => {
      const config = tinyConfig({}, c.quantizationConfig ? { quantization_config: c.quantizationConfig } : {});
      const dir = await writeCheckpoint(await makeTempDir(), {
        config,
        hfQuantConfig: c.hfQuantConfig,
        tensors: synthTensors(config, { encoder: c.encoder, experts: c.experts }),
        numShards: 2,
      });
      const { weights } = await loadDir(dir);
      const up = await loadCheckpointToGpu(g, dir, await specFor(dir), { progress: 'none' });
      try {
        const gu = up.weight(`${L}.1.mlp.experts.gate_up_proj`);
        expect({
          format: gu.format,
          ...('numRowGroups' in c.expect ? { numRowGroups: gu.numRowGroups } : {}),
          ...('hasPreScale' in c.expect ? { hasPreScale: gu.preScale !== undefined } : {}),
          ...('scaleBlock' in c.expect ? { scaleBlock: gu.scaleBlock } : {}),
        }).toEqual(c.expect);
        for (const name of [
          `${L}.1.mlp.experts.gate_up_proj`,
          `${L}.0.mlp.experts.down_proj`,
          `${L}.0.self_attn.q_proj.weight`,
        ])
          await checkExperts(g, up, name, weights.get(name)!);
      } finally {
        up.destroy();
      }
    });
  }
});

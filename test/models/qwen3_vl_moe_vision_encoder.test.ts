// The GPU vision tower (models/qwen3_vl_moe/vision_encoder.ts) against the f64 CPU reference
// (qwen3_vl_moe_vision_reference.ts) and transformers' golden vision embeds of the tiny Qwen3-VL-MoE.
// Tolerances, scaled errors max|ours − ref| / max|ref| per output (merged embeds and every deepstack feature):
// - with the tiled f32 GEMM (lavapipe, any adapter without f16 subgroup matrices): ≤ 1e-5 vs the reference (measured
//   ≤ 1e-6: f32 accumulation); vs golden (fp32 torch) ≤ 1e-4 (measured 2.4e-5, the golden file's own distance from
//   the f64 reference).
// - with the tensor-core GEMM (f16 operands): ≤ 1e-2 for both — f16 rounds activations to 2^-11 relative before
//   every linear, compounding over the blocks.
// Grids: the fixture image [1, 4, 6] with the checkpoint's weights; [1, 6, 10] (odd merged grid 3×5, pos-embed
// interpolation off the 8×8 grid's points) and [2, 4, 6] (two frames: two attention segments; the MLP over row
// chunks of 20, as a grid too large for one storage binding runs) with random weights.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DawnError } from '../../core/errors.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { loadCheckpointToGpu, type UploadedWeights } from '../../loader/upload.js';
import { type Qwen3VlMoeConfig, readQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { type VisionFeatures, VisionEncoder, visionWorkingBytes } from '../../models/qwen3_vl_moe/vision_encoder.js';
import { uploadVisionWeights, visionWeightsFromUpload } from '../../models/qwen3_vl_moe/vision_weights.js';
import { qwen3VlMoeWeightSpec } from '../../models/qwen3_vl_moe/weights.js';
import { randomArray } from '../helpers/compare.js';
import { findFixture, missingFixtureReason } from '../helpers/fixtures.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { goldenFormats, readGolden, scaledMaxError, tinyRoot } from './qwen3_vl_moe_reference_golden.js';
import {
  loadReferenceVisionWeights,
  randomVisionTensors,
  readProcessedImage,
  referenceVision,
  refVisionWeightsFrom,
} from './qwen3_vl_moe_vision_reference.js';

const gpu = await gpuOrSkip();
const dir = findFixture(`${tinyRoot}/bf16`);
const imagePath = `${tinyRoot}/image/gradient-100x75.processed.safetensors`;
const image = findFixture(imagePath);
if (!dir) console.log(`skipping: ${missingFixtureReason(`${tinyRoot}/bf16`)}`);
if (!image) console.log(`skipping: ${missingFixtureReason(imagePath)}`);
// lavapipe compiles each pipeline on the CPU the first time.
const timeout = 180_000;

function expectClose(ours: Float32Array, ref: ArrayLike<number>, tol: number, what: string) {
  const e = scaledMaxError(ours, ref);
  console.log(`${what}: max abs ${e.maxAbs.toExponential(2)}, scaled ${e.rel.toExponential(2)} (tolerance ${tol})`);
  expect(e.rel, what).toBeLessThanOrEqual(tol);
}

function expectFeatures(ours: VisionFeatures, ref: VisionFeatures, tol: number, what: string) {
  expectClose(ours.embeds, ref.embeds, tol, `${what} embeds`);
  expect(ours.deepstack.length).toBe(ref.deepstack.length);
  ours.deepstack.forEach((d, i) => expectClose(d, ref.deepstack[i], tol, `${what} deepstack ${i}`));
}

describe.skipIf(!gpu || !dir || !image)('Qwen3-VL vision tower on the GPU', { timeout }, () => {
  let g: Gpu;
  let config: Qwen3VlMoeConfig;
  let up: UploadedWeights;
  let encoder: VisionEncoder;
  let tol: number;
  let goldenTol: number;

  beforeAll(async () => {
    g = gpu!;
    config = await readQwen3VlMoeConfig(dir!);
    up = await loadCheckpointToGpu(g, dir!, qwen3VlMoeWeightSpec(config), {
      progress: 'none',
      include: (spec) => spec.group === 'vision',
    });
    encoder = await VisionEncoder.create(g, visionWeightsFromUpload(up, config.vision), config);
    const tiled = encoder.gemmPath === 'tiled';
    tol = tiled ? 1e-5 : 1e-2;
    goldenTol = tiled ? 1e-4 : 1e-2;
  }, timeout);
  afterAll(() => {
    encoder?.destroy();
    up?.destroy();
  });

  it('matches the reference and the golden embeds on the fixture image', async () => {
    const img = await readProcessedImage(image!);
    const ours = await encoder.encode(img);
    const ref = referenceVision(await loadReferenceVisionWeights(dir!), img.pixelValues, img.gridThw);
    expectFeatures(ours, ref, tol, 'fixture image vs CPU reference');
    const golden = await (await readGolden(goldenFormats[0])).tensor('image.vision_embeds');
    expectClose(ours.embeds, golden, goldenTol, 'fixture image vs golden vision_embeds');
    // A second encode of the same grid reuses the plan and gives the same bits.
    const again = await encoder.encode(img);
    expect(again.embeds).toEqual(ours.embeds);
  });

  it('rejects pixel values that do not match the grid', async () => {
    const img = await readProcessedImage(image!);
    await expect(encoder.encode({ pixelValues: img.pixelValues, gridThw: [1, 4, 8] })).rejects.toThrow(DawnError);
    await expect(encoder.encode({ pixelValues: img.pixelValues, gridThw: [1, 3, 8] })).rejects.toThrow(
      /multiples of the merge size/,
    );
  });

  it('matches the reference at the 30B widths (hidden 1152, 16 heads of 72, intermediate 4304, 48×48 positions)', async () => {
    // One block and no deepstack merger keep this to seconds on lavapipe (the mergers' 4608² GEMMs dominate); the
    // widths are the real model's.
    const vision = {
      ...config.vision,
      depth: 1,
      hiddenSize: 1152,
      intermediateSize: 4304,
      numHeads: 16,
      outHiddenSize: 2048,
      numPositionEmbeddings: 2304,
      deepstackVisualIndexes: [],
    };
    const grid: [number, number, number] = [1, 4, 6];
    const tensors = randomVisionTensors(vision, 7);
    const get = (name: string) => tensors.get(name)!;
    const { weights, buffers } = uploadVisionWeights(g, vision, get);
    const enc = await VisionEncoder.create(g, weights, { vision });
    try {
      const pixelValues = randomArray(24 * 1536, 77);
      const ours = await enc.encode({ pixelValues, gridThw: grid });
      const ref = referenceVision(refVisionWeightsFrom(vision, get), pixelValues, grid);
      expectFeatures(ours, ref, tol, '30B widths, grid [1,4,6]');
    } finally {
      enc.destroy();
      for (const b of buffers) b.destroy();
    }
  });

  for (const [grid, mlpChunkRows] of [
    [[1, 6, 10], undefined],
    [[2, 4, 6], 20],
  ] as [[number, number, number], number | undefined][]) {
    const chunks = mlpChunkRows ? `, MLP in chunks of ${mlpChunkRows} rows` : '';
    it(`matches the reference with random weights on grid [${grid}]${chunks}`, async () => {
      const tensors = randomVisionTensors(config.vision, 100 + grid[2]);
      const get = (name: string) => {
        const t = tensors.get(name);
        if (!t) throw new Error(`no random tensor ${name}`);
        return t;
      };
      const { weights, buffers } = uploadVisionWeights(g, config.vision, get);
      const enc = await VisionEncoder.create(g, weights, config, { mlpChunkRows });
      try {
        const n = grid[0] * grid[1] * grid[2];
        const pixelValues = randomArray(n * 1536, grid[1] * 7 + grid[0]);
        const ours = await enc.encode({ pixelValues, gridThw: grid });
        const ref = referenceVision(refVisionWeightsFrom(config.vision, get), pixelValues, grid);
        expectFeatures(ours, ref, tol, `grid [${grid}] vs CPU reference`);
      } finally {
        enc.destroy();
        for (const b of buffers) b.destroy();
      }
    });
  }

  it('keeps plans within planCacheBytes, and visionWorkingBytes counts what a plan allocates', async () => {
    const limit = g.caps.maxStorageBufferBindingSize;
    const grids: [number, number, number][] = [
      [1, 4, 6],
      [1, 6, 10],
    ];
    const bytes = grids.map((gr) => visionWorkingBytes(config.vision, gr[0] * gr[1] * gr[2], limit));
    const enc = await VisionEncoder.create(g, visionWeightsFromUpload(up, config.vision), config, {
      planCacheBytes: Math.max(...bytes) * 1.1, // room for one plan, not two
    });
    try {
      for (const [i, gr] of grids.entries()) {
        const n = gr[0] * gr[1] * gr[2];
        await enc.encode({ pixelValues: randomArray(n * 1536, 5 + i), gridThw: gr });
        const cache = enc.planCache;
        expect(cache.grids).toBe(1);
        // The estimate leaves out only the output slices' alignment padding (≤ 256 bytes per output).
        expect(cache.bytes).toBeGreaterThanOrEqual(bytes[i]);
        expect(cache.bytes - bytes[i]).toBeLessThanOrEqual(3 * 256);
      }
    } finally {
      enc.destroy();
    }
    expect(encoder.planCache.grids).toBeGreaterThanOrEqual(1); // unbounded by default: earlier grids stay
  });
});

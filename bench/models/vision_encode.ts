// Image-encoding time of the Qwen3-VL vision tower (models/qwen3_vl_moe/vision_encoder.ts) with synthetic BF16
// weights, at the Qwen3-VL-30B-A3B vision shape (depth 27, hidden 1152, 16 heads of 72, intermediate 4304, patch 16,
// merge 2, out 2048, deepstack [8, 16, 24], 48×48 position grid) for screenshots of 448×448, 1024×768 and 1920×1080,
// resized as the Qwen2-VL processor does (smart_resize to multiples of 32 within 65536..16777216 pixels).
// Printed per image: the GPU time of the encode's dispatches in one pass (timestamp queries where the adapter has
// them; they exclude the pixel upload and the feature read-back) and TFLOP/s over the linears and attention
// (models/qwen3_vl_moe/vision_layout.ts visionFlops), then the whole encode() wall time with upload and read-back.
// Checked first: at the tiny shape (the fixture's: depth 3, hidden 64) the encoder's features against the f64 CPU
// reference with the same random weights (scaled error ≤ 1e-5 with the f32 GEMM, 1e-2 with f16 tensor cores); at
// the 30B shape every output must be finite (the CPU reference would take hours there).
//   npx tsx bench/models/vision_encode.ts [--quick] [--reps N] [--json PATH]
// --quick: the tiny shape and the 448×448 image only (lavapipe takes ~2 s for it there, ~20 s for 1024×768; the 30B
// shape would take hours).
import { writeFileSync } from 'node:fs';
import type { Qwen3VlMoeVisionConfig } from '../../models/qwen3_vl_moe/config.js';
import { smartResize } from '../../models/qwen3_vl_moe/processor/smart_resize.js';
import { VisionEncoder } from '../../models/qwen3_vl_moe/vision_encoder.js';
import { visionFlops } from '../../models/qwen3_vl_moe/vision_layout.js';
import { patchInputs, uploadVisionWeights } from '../../models/qwen3_vl_moe/vision_weights.js';
import { timeDispatches } from '../../kernels/gpu/timing.js';
import { scaledMaxError } from '../../test/models/qwen3_vl_moe_reference_golden.js';
import {
  randomVisionTensors,
  referenceVision,
  refVisionWeightsFrom,
} from '../../test/models/qwen3_vl_moe_vision_reference.js';
import { openBenchGpu, parseBenchArgs } from '../kernels/harness.js';

const vision30b: Qwen3VlMoeVisionConfig = {
  depth: 27,
  hiddenSize: 1152,
  intermediateSize: 4304,
  numHeads: 16,
  inChannels: 3,
  patchSize: 16,
  temporalPatchSize: 2,
  spatialMergeSize: 2,
  outHiddenSize: 2048,
  numPositionEmbeddings: 2304,
  deepstackVisualIndexes: [8, 16, 24],
  hiddenAct: 'gelu_pytorch_tanh',
};
const visionTiny: Qwen3VlMoeVisionConfig = {
  ...vision30b,
  depth: 3,
  hiddenSize: 64,
  intermediateSize: 128,
  numHeads: 2,
  outHiddenSize: 128,
  numPositionEmbeddings: 64,
  deepstackVisualIndexes: [0, 1],
};

/** The patch grid [1, h/16, w/16] of a width × height image after smart_resize (Qwen3-VL's 65536..16777216 pixels). */
function imageGrid(width: number, height: number): [number, number, number] {
  const r = smartResize(height, width, 32, 65536, 16777216);
  return [1, r.height / 16, r.width / 16];
}

const images = [
  { name: '448x448', width: 448, height: 448 },
  { name: '1024x768', width: 1024, height: 768 },
  { name: '1920x1080', width: 1920, height: 1080 },
];

/** Cheap deterministic uniform(-scale, scale) values, as BF16 bits for matrices (truncated) or f32 for vectors. */
function synthetic(len: number, seed: number, scale: number, bf16: boolean): Float32Array | Uint16Array {
  const f = new Float32Array(len);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  if (!bf16) return f;
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(len);
  for (let i = 0; i < len; i++) out[i] = u[i] >>> 16;
  return out;
}

/** Synthetic weights by shape: norm weights around 1, biases 0.02, matrices 1/√fan_in, pos_embed 0.5. */
function syntheticGet() {
  let seed = 1;
  return (name: string, shape: readonly number[]): Float32Array | Uint16Array => {
    seed++;
    const len = shape.reduce((a, b) => a * b, 1);
    if (shape.length > 1)
      return synthetic(len, seed, name === 'pos_embed.weight' ? 0.5 : 1 / Math.sqrt(shape[1]), true);
    if (name.includes('norm') && name.endsWith('weight'))
      return (synthetic(len, seed, 0.1, false) as Float32Array).map((x) => 1 + x);
    return synthetic(len, seed, 0.02, false);
  };
}

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const results: Record<string, unknown>[] = [];
let failed = false;

/** Check at the tiny shape: random bf16-exact weights, one image, against the f64 reference. */
async function checkTiny(): Promise<void> {
  const config = { vision: visionTiny };
  const tensors = randomVisionTensors(visionTiny, 5);
  const get = (n: string) => tensors.get(n)!;
  const { weights, buffers } = uploadVisionWeights(gpu, visionTiny, get);
  const enc = await VisionEncoder.create(gpu, weights, config);
  try {
    const grid: [number, number, number] = [1, 6, 10];
    const pixelValues = synthetic(60 * patchInputs(visionTiny), 3, 1, false) as Float32Array;
    const ours = await enc.encode({ pixelValues, gridThw: grid });
    const ref = referenceVision(refVisionWeightsFrom(visionTiny, get), pixelValues, grid);
    const tol = enc.gemmPath === 'tiled' ? 1e-5 : 1e-2;
    const errs = [ours.embeds, ...ours.deepstack].map(
      (o, i) => scaledMaxError(o, [ref.embeds, ...ref.deepstack][i]).rel,
    );
    const worst = Math.max(...errs);
    console.log(
      `check tiny grid [${grid}] vs f64 reference: scaled error ${worst.toExponential(2)} (tolerance ${tol})`,
    );
    if (!(worst <= tol)) failed = true;
  } finally {
    enc.destroy();
    for (const b of buffers) b.destroy();
  }
}

async function benchShape(label: string, v: Qwen3VlMoeVisionConfig): Promise<void> {
  const t0 = performance.now();
  const { weights, buffers } = uploadVisionWeights(gpu, v, syntheticGet());
  const enc = await VisionEncoder.create(gpu, weights, { vision: v });
  console.log(
    `${label}: weights made and uploaded in ${((performance.now() - t0) / 1000).toFixed(1)} s, GEMM path ${enc.gemmPath}`,
  );
  try {
    for (const img of args.quick ? images.slice(0, 1) : images) {
      const grid = imageGrid(img.width, img.height);
      const patches = grid[0] * grid[1] * grid[2];
      const pixelValues = synthetic(patches * patchInputs(v), 11, 1, false) as Float32Array;
      const first = await enc.encode({ pixelValues, gridThw: grid }); // compiles, plans, and checks
      const finite = [first.embeds, ...first.deepstack].every((a) => a.every(Number.isFinite));
      if (!finite) {
        console.log(`${label} ${img.name}: non-finite features; not timed`);
        failed = true;
        continue;
      }
      const reps = args.reps ?? (args.quick ? 1 : 5);
      const t = await timeDispatches(gpu, (pass) => enc.encodePass(grid, pass), { reps, warmup: args.quick ? 0 : 1 });
      const w0 = performance.now();
      await enc.encode({ pixelValues, gridThw: grid });
      const wallMs = performance.now() - w0;
      const flops = visionFlops(v, grid);
      const tflops = flops / t.msPerRep / 1e9;
      console.log(
        `vision_encode ${label} image=${img.name} grid=${grid.join('x')} patches=${patches} tokens=${patches / 4} | ` +
          `${t.msPerRep.toFixed(2)} ms (${t.method}) | ${tflops >= 0.1 ? tflops.toFixed(2) : tflops.toFixed(4)} TFLOP/s | ` +
          `encode() with upload + read-back ${wallMs.toFixed(2)} ms`,
      );
      results.push({ shape: label, image: img.name, grid, patches, ms: t.msPerRep, method: t.method, tflops, wallMs });
    }
  } finally {
    enc.destroy();
    for (const b of buffers) b.destroy();
  }
}

await checkTiny();
if (!failed) {
  if (args.quick) await benchShape('tiny', visionTiny);
  else await benchShape('30b', vision30b);
}
if (args.json) writeFileSync(args.json, JSON.stringify({ adapter: gpu.caps.adapter, results }, null, 2));
gpu.destroy();
if (failed) {
  console.log('FAILED: see the check lines above');
  process.exitCode = 1;
}

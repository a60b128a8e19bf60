// Vision attention micro-benchmark (kernels/vision_attention.wgsl) at the Qwen3-VL-30B vision shape (16 heads,
// D 72): one image of 448×448 (T = 784 patches), 1024×768 (3072) and 1920×1080 (8160 = 68×120), full attention
// over the image. Checked against the f64 reference on 16 sampled query rows (|gpu − ref| ≤ 2e-6 + 1e-5·|ref|, as
// test/kernels/vision_attention.test.ts) before timing. flops = 4·T²·D·H (q·kᵀ and p·v); bytes = qkv read once
// + out written (the floor: K/V tiles are re-read per query tile from cache).
//   npx tsx bench/kernels/vision_attention.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: T = 256 (a 256×256 image), fewer repetitions; --skip-large: no 1920×1080.
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { visionAttentionRef } from '../../kernels/reference/vision_attention.js';
import { VisionAttention, visionCuSeqlens } from '../../kernels/vision_attention.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { compareOutputs, randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const H = 16;
const D = 72;
const kernel = await VisionAttention.create(gpu, { headDim: D });
const grids: [number, number, number][] = args.quick
  ? [[1, 16, 16]]
  : [[1, 28, 28], [1, 48, 64], ...(args.skipLarge ? [] : [[1, 68, 120] as [number, number, number]])];
for (const grid of grids) {
  const cu = visionCuSeqlens([grid]);
  const T = cu[cu.length - 1];
  const shape = { T, H, D };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const qkv = randomF32(T * 3 * H * D, T, 1);
  const qkvBuf = createBufferFrom(gpu, 'qkv', qkv);
  const cuBuf = createBufferFrom(gpu, 'cu_seqlens', cu);
  const out = createBuffer(gpu, 'out', T * H * D * 4);
  const d = kernel.bind({ qkv: qkvBuf, cuSeqlens: cuBuf, out }, { tokens: T, heads: H, segments: cu.length - 1 });
  await runner.run({
    name: kernel.name,
    shape,
    bytes: T * 4 * H * D * 4,
    flops: 4 * T * T * D * H,
    async check() {
      await runDispatches(gpu, [d]);
      const got = new Float32Array(await readBuffer(gpu, out));
      const rows = sampleIndices(T, 16);
      const ref = visionAttentionRef(qkv, cu, T, H, D, new Set(rows));
      const index = (j: number) => rows[Math.floor(j / (H * D))] * H * D + (j % (H * D));
      const refRows = new Float64Array(rows.length * H * D);
      rows.forEach((r, i) => refRows.set(ref.subarray(r * H * D, (r + 1) * H * D), i * H * D));
      return compareOutputs(got, refRows, { atol: 2e-6, rtol: 1e-5, what: `${rows.length} query rows`, index });
    },
    encode(pass) {
      d.encode(pass);
    },
  });
  for (const b of [qkvBuf, cuBuf, out]) b.destroy();
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

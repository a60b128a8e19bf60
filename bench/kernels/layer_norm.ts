// LayerNorm micro-benchmark (kernels/layer_norm.wgsl) at the Qwen3-VL-30B vision shapes: the blocks' norm1/norm2
// over hidden 1152 for a 448×448 image (T = 784 patches) and a 1920×1080 one (T = 8160: 68×120 patches), and the
// DeepStack mergers' post-shuffle norm over 4608 = 4·1152 (T/4 rows). f32 in and out. Each case is checked against
// the f64 reference (64 sampled rows; |gpu − ref| ≤ 1e-5 + 1e-5·|ref|, as test/kernels/layer_norm.test.ts) before
// timing; bytes = x read + w, b read + out written. Inputs rotate over copies larger than the last-level cache.
//   npx tsx bench/kernels/layer_norm.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: 256 rows of 1152 and 64 of 4608, fewer repetitions (runs on lavapipe in a few seconds).
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { LayerNorm } from '../../kernels/layer_norm.js';
import { layerNormRef } from '../../kernels/reference/layer_norm.js';
import {
  BenchRunner,
  measureStreamPeak,
  openBenchGpu,
  parseBenchArgs,
  rotationCopies,
  sampleIndices,
} from './harness.js';
import { compareOutputs, randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const eps = 1e-6;
const kernel = await LayerNorm.create(gpu, {});
const cases = args.quick
  ? [
      { T: 256, H: 1152 },
      { T: 64, H: 4608 },
    ]
  : [
      { T: 784, H: 1152 },
      { T: 8160, H: 1152 },
      { T: 2040, H: 4608 },
    ];
for (const { T, H } of args.skipLarge ? cases.slice(0, 1) : cases) {
  const shape = { T, H };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const bytes = T * H * 4;
  const copies = args.quick ? rotationCopies(bytes, 8 << 20, 32 << 20) : rotationCopies(bytes, 256 << 20, 1 << 30);
  const x = randomF32(T * H, T, 3).map((v) => v + 0.5);
  const w = randomF32(H, 7, 0.5).map((v) => 1 + v);
  const b = randomF32(H, 9, 0.2);
  const wBuf = createBufferFrom(gpu, 'w', w);
  const bBuf = createBufferFrom(gpu, 'b', b);
  const xBufs = Array.from({ length: copies }, (_, i) => createBufferFrom(gpu, `x#${i}`, x));
  const out = createBuffer(gpu, 'out', bytes);
  const ds = xBufs.map((xb) => kernel.bind({ x: xb, w: wBuf, b: bBuf, out }, { rows: T, cols: H, eps }));
  await runner.run({
    name: kernel.name,
    shape,
    bytes: 2 * bytes + 2 * H * 4,
    flops: 0,
    async check() {
      await runDispatches(gpu, [ds[0]]);
      const got = new Float32Array(await readBuffer(gpu, out));
      const rows = sampleIndices(T, 64);
      const xs = new Float32Array(rows.length * H);
      rows.forEach((r, i) => xs.set(x.subarray(r * H, (r + 1) * H), i * H));
      const ref = layerNormRef(xs, w, b, rows.length, H, eps);
      const index = (j: number) => rows[Math.floor(j / H)] * H + (j % H);
      return compareOutputs(got, ref, { atol: 1e-5, rtol: 1e-5, what: `${rows.length} rows`, index });
    },
    encode(pass, rep) {
      ds[rep % ds.length].encode(pass);
    },
  });
  for (const buf of [...xBufs, out, wBuf, bBuf]) buf.destroy();
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

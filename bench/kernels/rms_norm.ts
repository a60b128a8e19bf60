// RMSNorm micro-benchmark (kernels/rms_norm.wgsl) on the Qwen3-VL-30B-A3B hidden size 2048 (input_layernorm,
// post_attention_layernorm, the final norm): decode T = 1 and 32, prefill T = 512, f32 in and out as the model runs
// it. Each case is checked against the f64 reference (all rows at T ≤ 32, 64 sampled rows above; |gpu − ref| ≤
// 1e-6 + 2e-5·|ref|, as test/kernels/rms_norm.test.ts) before timing; bytes = x read + w read + out written.
// Inputs rotate over copies larger than the last-level cache.
//   npx tsx bench/kernels/rms_norm.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: hidden 512 and fewer repetitions (runs on lavapipe in a few seconds).
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { rmsNormRef } from '../../kernels/reference/rms_norm.js';
import { RmsNorm } from '../../kernels/rms_norm.js';
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
const H = args.quick ? 512 : 2048;
const eps = 1e-6;
const kernel = await RmsNorm.create(gpu, { src: 'f32', dst: 'f32' });
const w = randomF32(H, 7, 0.5).map((v) => 1 + v);
const wBuf = createBufferFrom(gpu, 'w', w);
for (const T of args.skipLarge ? [1, 32] : [1, 32, 512]) {
  const shape = { T, H };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const bytes = T * H * 4;
  const copies = args.quick ? rotationCopies(bytes, 8 << 20, 32 << 20) : rotationCopies(bytes, 256 << 20, 1 << 30);
  const x = randomF32(T * H, T, 3);
  const xBufs = Array.from({ length: copies }, (_, i) => createBufferFrom(gpu, `x#${i}`, x));
  const out = createBuffer(gpu, 'out', bytes);
  const ds = xBufs.map((xb) => kernel.bind({ x: xb, w: wBuf, out }, { rows: T, cols: H, eps }));
  await runner.run({
    name: kernel.name,
    shape,
    bytes: 2 * bytes + H * 4,
    flops: 0,
    async check() {
      await runDispatches(gpu, [ds[0]]);
      const got = new Float32Array(await readBuffer(gpu, out));
      const rows = sampleIndices(T, 64);
      const xs = new Float32Array(rows.length * H);
      rows.forEach((r, i) => xs.set(x.subarray(r * H, (r + 1) * H), i * H));
      const ref = rmsNormRef(xs, w, rows.length, H, eps);
      const index = (j: number) => rows[Math.floor(j / H)] * H + (j % H);
      return compareOutputs(got, ref, { atol: 1e-6, rtol: 2e-5, what: `${rows.length} rows`, index });
    },
    encode(pass, rep) {
      ds[rep % ds.length].encode(pass);
    },
  });
  for (const b of [...xBufs, out]) b.destroy();
}
wBuf.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

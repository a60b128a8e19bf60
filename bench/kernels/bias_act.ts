// bias_act micro-benchmark (kernels/bias_act.wgsl) at the Qwen3-VL-30B vision shapes for a 1920×1080 image
// (T = 8160 patches): fc1's bias + tanh-GELU over intermediate 4304, the merger's bias + exact GELU over 4608 (T/4
// rows), and fc2's bias added into the residual stream over hidden 1152. Each case is checked against the f64
// reference (all outputs; |gpu − ref| ≤ 2e-6 + 1e-5·|ref|, as test/kernels/bias_act.test.ts) before timing;
// bytes = x read (+ h read) + result written + bias. Inputs rotate over copies larger than the last-level cache.
//   npx tsx bench/kernels/bias_act.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: 256 rows and fewer repetitions (runs on lavapipe in a few seconds).
import { type BiasActVariant, BiasAct } from '../../kernels/bias_act.js';
import { createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { biasActRef } from '../../kernels/reference/bias_act.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, rotationCopies } from './harness.js';
import { compareOutputs, randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const T = args.quick ? 256 : 8160;
const cases: { variant: BiasActVariant; rows: number; cols: number }[] = [
  { variant: { act: 'gelu_tanh', bias: true }, rows: T, cols: 4304 },
  { variant: { act: 'gelu_erf', bias: true }, rows: T / 4, cols: 4608 },
  { variant: { act: 'none', bias: true, residual: true }, rows: T, cols: 1152 },
];
for (const { variant, rows, cols } of cases) {
  const kernel = await BiasAct.create(gpu, variant);
  const shape = { T: rows, N: cols };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const n = rows * cols;
  const bytes = n * 4;
  const copies = args.quick ? rotationCopies(bytes, 8 << 20, 32 << 20) : rotationCopies(bytes, 256 << 20, 1 << 30);
  const x = randomF32(n, rows, 3);
  const b = randomF32(cols, 5, 0.5);
  const h = randomF32(n, 11, 1);
  const bBuf = createBufferFrom(gpu, 'b', b);
  // In place the input is overwritten, so the check runs on its own fresh copy before timing.
  const xBufs = Array.from({ length: copies }, (_, i) => createBufferFrom(gpu, `x#${i}`, x));
  const hBuf = variant.residual ? createBufferFrom(gpu, 'h', h) : undefined;
  const ds = xBufs.map((xb) => kernel.bind({ x: xb, b: bBuf, h: hBuf }, { rows, cols }));
  await runner.run({
    name: kernel.name,
    shape,
    bytes: (variant.residual ? 3 : 2) * bytes + cols * 4,
    flops: 0,
    async check() {
      const out = variant.residual ? hBuf! : xBufs[0];
      await runDispatches(gpu, [ds[0]]);
      const got = new Float32Array(await readBuffer(gpu, out));
      const ref = biasActRef(variant.act, x, b, variant.residual ? h : null, rows, cols);
      gpu.queue.writeBuffer(out, 0, variant.residual ? h : x);
      return compareOutputs(got, ref, { atol: 2e-6, rtol: 1e-5, what: `${n} outputs` });
    },
    encode(pass, rep) {
      ds[rep % ds.length].encode(pass);
    },
  });
  for (const buf of [...xBufs, bBuf, hBuf]) buf?.destroy();
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

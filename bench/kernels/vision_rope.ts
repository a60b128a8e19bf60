// Vision RoPE micro-benchmark (kernels/vision_rope.wgsl) at the Qwen3-VL-30B vision shape (16 heads, D 72) for a
// 448×448 image (T = 784 patches) and a 1920×1080 one (T = 8160): q and k of the fused qkv rotated in place. Checked
// against the f64 reference (64 sampled tokens; |gpu − ref| ≤ 1e-6 + 1e-6·|ref|, as test/kernels/vision_rope.test.ts)
// before timing; bytes = q and k read and written + positions read.
//   npx tsx bench/kernels/vision_rope.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: T = 784 only, fewer repetitions.
import { createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { visionRopeRef } from '../../kernels/reference/vision_rope.js';
import { VisionRope, visionRopePositions } from '../../kernels/vision_rope.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { compareOutputs, randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const heads = 16;
const D = 72;
const kernel = await VisionRope.create(gpu, { headDim: D });
const grids: [number, number, number][] =
  args.quick || args.skipLarge
    ? [[1, 28, 28]]
    : [
        [1, 28, 28],
        [1, 68, 120],
      ];
for (const grid of grids) {
  const positions = visionRopePositions([grid], 2);
  const T = positions.length / 2;
  const shape = { T, heads, D };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const row = 3 * heads * D;
  const qkv = randomF32(T * row, T, 2);
  const qkvBuf = createBufferFrom(gpu, 'qkv', qkv);
  const posBuf = createBufferFrom(gpu, 'positions', positions);
  const d = kernel.bind({ qkv: qkvBuf, positions: posBuf }, { tokens: T, heads });
  await runner.run({
    name: kernel.name,
    shape,
    bytes: 2 * T * 2 * heads * D * 4 + T * 8,
    flops: 0,
    async check() {
      await runDispatches(gpu, [d]);
      const got = new Float32Array(await readBuffer(gpu, qkvBuf));
      gpu.queue.writeBuffer(qkvBuf, 0, qkv); // timing below rotates again and again: values stay bounded
      const toks = sampleIndices(T, 64);
      const xs = new Float32Array(toks.length * row);
      const ps = new Uint32Array(toks.length * 2);
      toks.forEach((t, i) => {
        xs.set(qkv.subarray(t * row, (t + 1) * row), i * row);
        ps.set(positions.subarray(2 * t, 2 * t + 2), 2 * i);
      });
      const ref = visionRopeRef(xs, ps, toks.length, heads, D);
      const index = (j: number) => toks[Math.floor(j / row)] * row + (j % row);
      return compareOutputs(got, ref, { atol: 1e-6, rtol: 1e-6, what: `${toks.length} tokens`, index });
    },
    encode(pass) {
      d.encode(pass);
    },
  });
  qkvBuf.destroy();
  posBuf.destroy();
}
kernel.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

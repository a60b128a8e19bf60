// Position-embedding interpolation micro-benchmark (kernels/pos_embed_interp.wgsl) at the Qwen3-VL-30B vision shape
// (hidden 1152, a 48×48 = 2304-row table) for a 448×448 image (T = 784) and a 1920×1080 one (T = 8160). Checked
// against the f64 reference (64 sampled rows; |gpu − ref| ≤ 1e-6 + 1e-6·|ref|, as test/kernels/pos_embed_interp.test.ts)
// before timing; bytes = x read and written + the table once + index/weight (the four gathered rows per patch
// are neighbours on the grid, so mostly cache hits).
//   npx tsx bench/kernels/pos_embed_interp.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: T = 784 only, fewer repetitions.
import { createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { PosEmbedInterp } from '../../kernels/pos_embed_interp.js';
import { posEmbedInterpRef } from '../../kernels/reference/pos_embed_interp.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { compareOutputs, randomF32, randomInts } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const cols = 1152;
const tableRows = 2304;
const kernel = await PosEmbedInterp.create(gpu);
const table = randomF32(tableRows * cols, 3, 1);
const tableBuf = createBufferFrom(gpu, 'table', table);
for (const rows of args.quick || args.skipLarge ? [784] : [784, 8160]) {
  const shape = { T: rows, H: cols };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const x = randomF32(rows * cols, rows, 2);
  const index = randomInts(rows * 4, tableRows, rows);
  const weight = randomF32(rows * 4, 5, 0.5).map((v) => v + 0.5);
  const xBuf = createBufferFrom(gpu, 'x', x);
  const bufs = { x: xBuf, table: tableBuf, index: createBufferFrom(gpu, 'index', index) };
  const d = kernel.bind({ ...bufs, weight: createBufferFrom(gpu, 'weight', weight) }, { rows, cols, tableRows });
  await runner.run({
    name: kernel.name,
    shape,
    bytes: 2 * rows * cols * 4 + tableRows * cols * 4 + rows * 32,
    flops: 0,
    async check() {
      await runDispatches(gpu, [d]);
      const got = new Float32Array(await readBuffer(gpu, xBuf));
      gpu.queue.writeBuffer(xBuf, 0, x);
      const picked = sampleIndices(rows, 64);
      const xs = new Float32Array(picked.length * cols);
      const is = new Uint32Array(picked.length * 4);
      const ws = new Float32Array(picked.length * 4);
      picked.forEach((t, i) => {
        xs.set(x.subarray(t * cols, (t + 1) * cols), i * cols);
        is.set(index.subarray(4 * t, 4 * t + 4), 4 * i);
        ws.set(weight.subarray(4 * t, 4 * t + 4), 4 * i);
      });
      const ref = posEmbedInterpRef(xs, table, is, ws, picked.length, cols);
      const idx = (j: number) => picked[Math.floor(j / cols)] * cols + (j % cols);
      return compareOutputs(got, ref, { atol: 1e-6, rtol: 1e-6, what: `${picked.length} rows`, index: idx });
    },
    encode(pass) {
      d.encode(pass);
    },
  });
  xBuf.destroy();
}
tableBuf.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

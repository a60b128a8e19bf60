// Token-embedding gather micro-benchmark (kernels/embedding.wgsl): rows of the bf16 (151936, 2048) table into f32,
// decode T = 1 and 32, prefill T = 512. The table (622 MB) is larger than one binding on most devices and is bound
// as parts, as the model does. Each case is checked against the reference (bf16 → f32 is exact: bit-equal, every
// token at T ≤ 32, 64 sampled tokens above) before timing; bytes = T rows of the table read (bf16) + ids + the f32
// output written. Ids change between repetitions (rotated over several id buffers) so rows come from DRAM.
//   npx tsx bench/kernels/embedding.ts [--quick] [--skip-large] [--filter RE] [--json PATH] [--reps N]
// --quick: a (16384, 512) table.
import { toBf16Array } from '../../core/float16.js';
import { Embedding, embeddingTableFromBuffer } from '../../kernels/embedding.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { embeddingRef } from '../../kernels/reference/embedding.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { compareOutputs, randomF32, randomInts } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const [V, H] = args.quick ? [16384, 512] : [151936, 2048];
const kernel = await Embedding.create(gpu, { dst: 'f32' });
const bits = toBf16Array(randomF32(V * H, 11, 0.1));
const tableBuf = createBufferFrom(gpu, 'embed_tokens', bits);
const table = embeddingTableFromBuffer(gpu, tableBuf, V, H);
const ID_SETS = 16;
for (const T of args.skipLarge ? [1, 32] : [1, 32, 512]) {
  const shape = { T, V, H, parts: table.parts.length };
  if (runner.skips({ name: kernel.name, shape })) continue;
  const idSets = Array.from({ length: ID_SETS }, (_, i) => randomInts(T, V, 100 * T + i));
  const idBufs = idSets.map((ids, i) => createBufferFrom(gpu, `ids#${i}`, ids));
  const out = createBuffer(gpu, 'out', T * H * 4);
  const ds = idBufs.map((ids) => kernel.bind({ ids, out }, table, T));
  await runner.run({
    name: kernel.name,
    shape,
    bytes: T * H * 2 + T * 4 + T * H * 4,
    flops: 0,
    async check() {
      await runDispatches(gpu, ds[0]);
      const got = new Float32Array(await readBuffer(gpu, out));
      const tokens = sampleIndices(T, 64);
      const ref = embeddingRef(
        bits,
        tokens.map((t) => idSets[0][t]),
        V,
        H,
      );
      const index = (j: number) => tokens[Math.floor(j / H)] * H + (j % H);
      return compareOutputs(got, ref, { atol: 0, rtol: 0, what: `${tokens.length} tokens`, index });
    },
    encode(pass, rep) {
      for (const d of ds[rep % ds.length]) d.encode(pass);
    },
  });
  for (const b of [...idBufs, out]) b.destroy();
}
tableBuf.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

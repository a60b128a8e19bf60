// Paged causal prefill attention micro-benchmark (kernels/attention_prefill.wgsl) on the Qwen3-VL-30B-A3B attention
// (32 query heads over 4 KV heads of 128), bf16 and fp8 KV, two packed batches: one 512-token sequence and four
// 128-token sequences (whole prompts: context = query length). Each case is checked against the f64 reference on
// 48 sampled query rows (all heads; |gpu − ref| ≤ 1e-5 + 1e-4·|ref|) before timing.
// TFLOP/s: causal work only, Σ over rows and heads of 4 · D · (keys visible) (QKᵀ and PV). bytes = K/V read once +
// q read + out written (f32), for the fraction of the stream peak. Repetitions rotate over disjoint block sets.
//   npx tsx bench/kernels/attention_prefill.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: one 128-token and four 32-token sequences (same heads).
import { AttentionPrefill } from '../../kernels/attention_prefill.js';
import { AttentionStep } from '../../kernels/attention_step.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import type { KvDtype } from '../../kernels/kv_cache.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { compareOutputs, randomF32 } from './lib/check.js';
import { attendRowsRef, buildBenchKv, destroyBenchKv, kvCopies, kvReadBytes } from './lib/paged_kv.js';

const [HQ, HKV, D] = [32, 4, 128];
const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const batches = args.quick ? [[128], [32, 32, 32, 32]] : [[512], [128, 128, 128, 128]];
for (const dtype of ['bf16', 'fp8e4m3'] as KvDtype[]) {
  const kernel = await AttentionPrefill.create(gpu, { numQHeads: HQ, numKvHeads: HKV, headDim: D, dtype });
  for (const lens of batches) {
    const S = lens.length;
    const T = lens.reduce((a, b) => a + b, 0);
    const shape = { seqs: `${S}x${lens[0]}`, T, Hq: HQ, Hkv: HKV, D };
    if (runner.skips({ name: kernel.name, shape })) continue;
    const copies = kvCopies(gpu, dtype, HKV, D, lens, args.quick ? 16 << 20 : 256 << 20);
    const kv = buildBenchKv(gpu, dtype, HKV, D, lens, copies, T + S);
    const maxContext = Math.max(...lens);
    const step = new AttentionStep(gpu, { maxSeqs: S, maxTokens: T, maxContextLen: maxContext });
    step.update({ numSeqs: S, numTokens: T, maxContextLen: maxContext });
    const starts = new Uint32Array(S + 1);
    lens.forEach((l, s) => (starts[s + 1] = starts[s] + l));
    const row = HQ * D;
    const q = randomF32(T * row, 9 + T, 1);
    const bufs = {
      q: createBufferFrom(gpu, 'q', q),
      queryStart: createBufferFrom(gpu, 'query_start', starts),
      contextLens: createBufferFrom(gpu, 'context_lens', Uint32Array.from(lens)),
      out: createBuffer(gpu, 'out', T * row * 4),
    };
    const tables = kv.blockTables.map((t, i) => createBufferFrom(gpu, `block_tables#${i}`, t));
    const ds = tables.map((blockTables) =>
      kernel.bind({ ...bufs, blockTables, cache: kv.cache }, step, { maxBlocksPerSeq: kv.maxBlocks, ...kv.scales }),
    );
    // row i of a sequence of length L sees i + 1 keys: Σ_i (i + 1) = L(L + 1)/2 per head
    const flops = lens.reduce((a, l) => a + 4 * D * HQ * ((l * (l + 1)) / 2), 0);
    await runner.run({
      name: kernel.name,
      shape,
      bytes: kvReadBytes(dtype, HKV, D, T) + 2 * T * row * 4,
      flops,
      async check() {
        await runDispatches(gpu, [ds[0]]);
        const got = new Float32Array(await readBuffer(gpu, bufs.out));
        const rows = sampleIndices(T, 48);
        const ref = new Float64Array(rows.length * row);
        rows.forEach((t, i) => {
          const s = lens.findIndex((_, j) => t < starts[j + 1]);
          const pos = t - starts[s];
          ref.set(attendRowsRef(kv, HQ, s, [{ q: q.subarray(t * row, (t + 1) * row), pos }]), i * row);
        });
        const index = (j: number) => rows[Math.floor(j / row)] * row + (j % row);
        return compareOutputs(got, ref, { atol: 1e-5, rtol: 1e-4, what: `${rows.length} query rows`, index });
      },
      encode(pass, rep) {
        ds[rep % ds.length].encode(pass);
      },
    });
    for (const b of [...Object.values(bufs), step.uniform, ...tables]) b.destroy();
    destroyBenchKv(kv);
  }
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

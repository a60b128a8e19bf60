// Paged decode attention micro-benchmark (kernels/attention_decode.wgsl, split-K partitions + reduce) on the
// Qwen3-VL-30B-A3B attention: 32 query heads over 4 KV heads of 128, batch 1 and 32, contexts 512 and 4096, bf16
// and fp8 (e4m3, per-tensor scales) KV. Each case is checked against the f64 paged-attention reference on up to 4
// sampled sequences (all heads; |gpu − ref| ≤ 1e-5 + 1e-4·|ref|) before timing.
// bytes = K/V read (B · ctx · Hkv · D · 2 · element) + q read + out written (f32); the partition scratch is not
// counted. TFLOP/s: 4 · B · Hq · ctx · D (QKᵀ and PV). Repetitions rotate over disjoint block sets of the cache.
//   npx tsx bench/kernels/attention_decode.ts [--quick] [--skip-large] [--filter RE] [--json PATH] [--reps N]
// --quick: batch 1 and 4, contexts 128 and 512 (same heads).
import { AttentionDecode } from '../../kernels/attention_decode.js';
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
const batches = args.quick ? [1, 4] : args.skipLarge ? [1] : [1, 32];
const contexts = args.quick ? [128, 512] : [512, 4096];
for (const dtype of ['bf16', 'fp8e4m3'] as KvDtype[]) {
  const kernel = await AttentionDecode.create(gpu, { numQHeads: HQ, numKvHeads: HKV, headDim: D, dtype });
  for (const B of batches)
    for (const ctx of contexts) {
      const shape = { B, ctx, Hq: HQ, Hkv: HKV, D };
      if (runner.skips({ name: kernel.name, shape })) continue;
      const lens = Array.from({ length: B }, () => ctx);
      const copies = kvCopies(gpu, dtype, HKV, D, lens, args.quick ? 16 << 20 : 256 << 20);
      const kv = buildBenchKv(gpu, dtype, HKV, D, lens, copies, B + ctx);
      const step = new AttentionStep(gpu, { maxSeqs: B, maxTokens: B, maxContextLen: ctx });
      step.update({ numSeqs: B, numTokens: B, maxContextLen: ctx });
      const q = randomF32(B * HQ * D, 5 + B, 1);
      const qBuf = createBufferFrom(gpu, 'q', q);
      const ctxBuf = createBufferFrom(gpu, 'context_lens', Uint32Array.from(lens));
      const out = createBuffer(gpu, 'out', B * HQ * D * 4);
      const tables = kv.blockTables.map((t, i) => createBufferFrom(gpu, `block_tables#${i}`, t));
      const ds = tables.map((blockTables) =>
        kernel.bind({ q: qBuf, blockTables, contextLens: ctxBuf, cache: kv.cache, out }, step, {
          maxBlocksPerSeq: kv.maxBlocks,
          ...kv.scales,
        }),
      );
      const row = HQ * D;
      await runner.run({
        name: kernel.name,
        shape: { ...shape, parts: step.numPartitions },
        bytes: kvReadBytes(dtype, HKV, D, B * ctx) + 2 * B * row * 4,
        flops: 4 * B * HQ * ctx * D,
        async check() {
          await runDispatches(gpu, [ds[0]]);
          const got = new Float32Array(await readBuffer(gpu, out));
          const seqs = sampleIndices(B, 4);
          const ref = new Float64Array(seqs.length * row);
          seqs.forEach((s, i) =>
            ref.set(attendRowsRef(kv, HQ, s, [{ q: q.subarray(s * row, (s + 1) * row), pos: ctx - 1 }]), i * row),
          );
          const index = (j: number) => seqs[Math.floor(j / row)] * row + (j % row);
          return compareOutputs(got, ref, { atol: 1e-5, rtol: 1e-4, what: `${seqs.length} sequences`, index });
        },
        encode(pass, rep) {
          ds[rep % ds.length].encode(pass);
        },
      });
      for (const b of [qBuf, ctxBuf, out, step.uniform, ...tables]) b.destroy();
      destroyBenchKv(kv);
    }
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

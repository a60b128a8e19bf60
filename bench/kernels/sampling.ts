// Sampling micro-benchmark: one decode step's sampling (penalties → temperature → min_p/top-k/top-p → race, logprobs)
// at V = 151936 for B = 1 and B = 32, in the modes a server sees. Each case is first checked against the CPU
// reference (tokens equal, logprobs within 1e-4), then timed; bytes = the logits read once (B · V · 4), so GB/s says
// how far the whole multi-pass sampler is from one streaming read of its input.
// `npx tsx bench/kernels/sampling.ts [--quick] [--skip-large] [--filter RE] [--json PATH] [--reps N]`
import { createBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { sampleRef } from '../../kernels/reference/sampling.js';
import { greedySampleRow, type SampleRow, Sampling } from '../../kernels/sampling.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs } from './harness.js';

const V = 151936;
/** Plain sampling at temperature 1, no filters or penalties. */
const base: SampleRow = { ...greedySampleRow(0), temperature: 1, seed: 1 };
const history = Array.from({ length: 600 }, (_, i) => (i * 7919) % V);
const MODES: Record<string, SampleRow> = {
  greedy: { ...base, temperature: 0 },
  temperature: { ...base, temperature: 0.8 },
  // Qwen3's generation_config defaults, with penalties over a 600-token history and top-5 logprobs.
  topk_topp_pen_lp5: {
    ...base,
    temperature: 0.7,
    topK: 20,
    topP: 0.8,
    repetitionPenalty: 1.05,
    presencePenalty: 0.5,
    tokenIds: history,
    numPromptTokens: 500,
    numLogprobs: 5,
  },
};

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const kernel = await Sampling.create(gpu);
const batches = args.skipLarge ? [1] : [1, 32];
for (const B of batches) {
  // Logits like a model's: mostly small, a few strong candidates per row.
  const logits = new Float32Array(B * V);
  let s = 12345;
  for (let i = 0; i < logits.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    logits[i] = (s / 2 ** 32) * 8 - 4;
  }
  for (let r = 0; r < B; r++) for (let j = 0; j < 8; j++) logits[r * V + ((r * 997 + j * 131) % V)] = 9 + j * 0.3;
  const buf = createBuffer(gpu, 'logits', B * V * 4);
  writeBuffer(gpu, buf, 0, logits);
  const binding = kernel.bind(buf, { maxRows: B, vocabSize: V });
  for (const [mode, row] of Object.entries(MODES)) {
    const rows = Array.from({ length: B }, (_, r) => ({ ...row, seed: 100 + r }));
    const c = { name: `sampling_${mode}`, shape: { B, V } };
    if (runner.skips(c)) continue;
    await runner.run({
      ...c,
      bytes: B * V * 4,
      flops: 0,
      async check() {
        binding.setRows(rows);
        await runDispatches(gpu, [binding]);
        const got = await binding.read();
        const want = sampleRef(logits, V, rows);
        for (let r = 0; r < B; r++) {
          const [g, w] = [got[r], want[r]];
          const lpOk =
            w.logprobs === null ||
            (g.logprobs !== null &&
              Math.abs(g.logprobs.logprob - w.logprobs.logprob) <= 1e-4 &&
              g.logprobs.top.every((t, j) => t.tokenId === w.logprobs!.top[j].tokenId));
          if (g.tokenId !== w.tokenId || !lpOk)
            return { ok: false, message: `row ${r}: gpu ${JSON.stringify(g)} vs reference ${JSON.stringify(w)}` };
        }
        return { ok: true, message: `${B} rows match` };
      },
      encode(pass) {
        binding.encode(pass);
      },
    });
  }
  binding.destroy();
  buf.destroy();
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

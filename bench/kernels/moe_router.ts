// MoE router micro-benchmark (kernels/moe_router.wgsl): logits = x · Wgᵀ from the bf16 [128, 2048] router weight,
// softmax, top-8, renormalized (norm_topk_prob), in one dispatch per step, for decode T = 1 and 32 and prefill
// T = 512. Each case is checked against the f64 reference (ids equal wherever the reference probabilities are
// apart by more than the f32 error bound; weights within 4·δ + 2e-6 relative, δ = (H + 16)·2^-24·max Σ|x·w|, the
// rule of test/kernels/moe_router.test.ts) on every token at T ≤ 32 and 64 sampled tokens above, then timed.
// bytes = router weight (bf16) + x (f32) + ids and weights written; TFLOP/s counts the logits matvec (2·T·E·H).
// Router weights rotate over copies larger than the last-level cache.
//   npx tsx bench/kernels/moe_router.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: 16 experts, hidden 512.
import { f32ToBf16Bits, bf16BitsToF32 } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { MoeRouter } from '../../kernels/moe_router.js';
import { moeRouterRef, routerLogitsRef } from '../../kernels/reference/moe_router.js';
import type { GpuWeight } from '../../kernels/weight_format.js';
import type { CheckResult } from './harness.js';
import {
  BenchRunner,
  measureStreamPeak,
  openBenchGpu,
  parseBenchArgs,
  rotationCopies,
  sampleIndices,
} from './harness.js';
import { randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const [E, H, K] = args.quick ? [16, 512, 8] : [128, 2048, 8];
const router = await MoeRouter.create(gpu, { input: 'x', weightFormat: 'bf16', normTopk: true });
const wBits = Uint16Array.from(randomF32(E * H, 3, 0.05), (v) => f32ToBf16Bits(v));
const w = Float64Array.from(wBits, (b) => bf16BitsToF32(b));
const wBytes = E * H * 2;
const copies = args.quick ? rotationCopies(wBytes, 8 << 20, 32 << 20) : rotationCopies(wBytes, 256 << 20, 1 << 30);
const weights: GpuWeight[] = Array.from({ length: copies }, (_, i) => ({
  label: `mlp.gate#${i}`,
  format: 'bf16',
  numExperts: 1,
  N: E,
  K: H,
  data: createBufferFrom(gpu, `mlp.gate#${i}`, wBits),
}));

/** The header's rule: ids may swap only where probabilities are within the f32 bound; weights within rtol. */
function checkTokens(x: Float32Array, tokens: number[], ids: Uint32Array, wts: Float32Array): CheckResult {
  const xs = new Float32Array(tokens.length * H);
  tokens.forEach((t, i) => xs.set(x.subarray(t * H, (t + 1) * H), i * H));
  const logits = routerLogitsRef(xs, w, tokens.length, E, H);
  const ref = moeRouterRef(logits, tokens.length, E, K, true);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    let absMax = 0;
    for (let e = 0; e < E; e++) {
      let a = 0;
      for (let h = 0; h < H; h++) a += Math.abs(xs[i * H + h] * w[e * H + h]);
      absMax = Math.max(absMax, a);
    }
    const rtol = 4 * (H + 16) * 2 ** -24 * absMax + 2e-6;
    const p = ref.probs.subarray(i * E, (i + 1) * E);
    let total = 0;
    for (let j = 0; j < K; j++) total += p[ids[t * K + j]] ?? NaN;
    for (let j = 0; j < K; j++) {
      const [got, want] = [ids[t * K + j], ref.ids[i * K + j]];
      if (got !== want && !(got < E && Math.abs(p[got] - p[want]) <= 4 * rtol * p[want]))
        return { ok: false, message: `token ${t} rank ${j}: expert ${got}, reference ${want} (p ${p[want]})` };
      const wRef = p[got] / total;
      if (!(Math.abs(wts[t * K + j] - wRef) <= rtol * wRef + 1e-12))
        return { ok: false, message: `token ${t} rank ${j}: weight ${wts[t * K + j]} vs reference ${wRef}` };
    }
  }
  return { ok: true, message: `${tokens.length} tokens' top-${K} match` };
}

for (const T of args.skipLarge ? [1, 32] : [1, 32, 512]) {
  const shape = { T, E, H, k: K };
  if (runner.skips({ name: router.name, shape })) continue;
  const x = randomF32(T * H, 17 + T, 2);
  const xBuf = createBufferFrom(gpu, 'x', x);
  const topkIds = createBuffer(gpu, 'topk_ids', T * K * 4);
  const topkWeights = createBuffer(gpu, 'topk_weights', T * K * 4);
  const ds = weights.map((weight) => router.bind({ x: xBuf, weight, topkIds, topkWeights }, { tokens: T, topK: K }));
  await runner.run({
    name: router.name,
    shape,
    bytes: wBytes + T * H * 4 + 2 * T * K * 4,
    flops: 2 * T * E * H,
    async check() {
      await runDispatches(gpu, [ds[0]]);
      const ids = new Uint32Array(await readBuffer(gpu, topkIds));
      const wts = new Float32Array(await readBuffer(gpu, topkWeights));
      return checkTokens(x, sampleIndices(T, 64), ids, wts);
    },
    encode(pass, rep) {
      ds[rep % ds.length].encode(pass);
    },
  });
  for (const b of [xBuf, topkIds, topkWeights]) b.destroy();
}
for (const wt of weights) wt.data.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

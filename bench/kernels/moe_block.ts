// Sparse MoE block micro-benchmark (kernels/moe_block.ts: router → experts gate_up (silu·up) → down → weighted sum +
// residual, in place into the residual stream) on the Qwen3-VL-30B-A3B MoE: 128 experts, top-8 (norm_topk_prob),
// hidden 2048, moe_intermediate 768, NVFP4 and FP8 (128×128 blocks) experts, bf16 router. Decode T = 1 (the
// grouped-matvec path) and prefill T = 512 (MoeAlign + grouped GEMMs). Each line's time is one MoE layer.
// bytes = the weights (packed data + scales) of the experts the step's tokens route to (8 at T = 1; at T = 512
// nearly all 128) + the router weight; GB/s of that is how close the layer gets to streaming its active experts.
// TFLOP/s: 2·T·k·(2I·H + I·H) + 2·T·E·H.
// Check before timing, on sampled tokens: the GPU's expert ids must be distinct and equal the f64 router reference's
// wherever the reference probabilities differ by more than 1e-5 relative (test/kernels/moe_block.test.ts); the
// output row must match kernels/reference/moe_block.ts evaluated with those ids, |gpu − ref| ≤ 2·bound + 1e-6 (the
// reference's propagated f32 bound). With norm_topk_prob a token's weights depend only on its k experts' logits,
// so the reference runs on a k-expert sub-model per token (the full model would not fit the host as f64).
// Decode repetitions rotate over 16 token inputs (different experts each) so the weights come from DRAM.
//   npx tsx bench/kernels/moe_block.ts [--quick] [--skip-large] [--filter RE] [--json PATH] [--reps N]
// --quick: 16 experts, hidden 512, intermediate 192, T = 1 and 64 (FP8 blocks 64×64).
import { createBuffer, createBufferFrom, readBuffer, readU32 } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { MoeBlock, type MoeBlockWeights } from '../../kernels/moe_block.js';
import { type HostWeight, randomHostWeight, uploadHostWeight } from '../../kernels/reference/gemm_weights.js';
import { moeBlockRef } from '../../kernels/reference/moe_block.js';
import { moeRouterRef, routerLogitsRef } from '../../kernels/reference/moe_router.js';
import { type WeightFormat, weightBytesPerExpert } from '../../kernels/weight_format.js';
import type { CheckResult } from './harness.js';
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs, sampleIndices } from './harness.js';
import { randomF32 } from './lib/check.js';

const args = parseBenchArgs();
const [E, H, I, K] = args.quick ? [16, 512, 192, 8] : [128, 2048, 768, 8];
const tokenCounts = args.quick ? [1, 64] : args.skipLarge ? [1] : [1, 512];
const DECODE_INPUTS = 16;
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);

/** Rows of `w` for experts `ids`, as an [ids.length, N, K] f64 stack. */
function expertRows(w: HostWeight, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * w.N * w.K);
  for (let j = 0; j < ids.length; j++) for (let n = 0; n < w.N; n++) out.set(w.rowOf(ids[j], n), (j * w.N + n) * w.K);
  return out;
}

/** Router rows (of an [E, H] f64 router) of a token's k experts, in the order of its ids. */
function subRouter(routerRows: Float64Array, ids: ArrayLike<number>): Float64Array {
  const r = new Float64Array(ids.length * H);
  for (let j = 0; j < ids.length; j++) r.set(routerRows.subarray(ids[j] * H, (ids[j] + 1) * H), j * H);
  return r;
}

for (const format of ['nvfp4', 'fp8'] as WeightFormat[]) {
  const name = `moe_block_${format}`;
  if (tokenCounts.every((T) => runner.skips({ name, shape: { T, E, k: K, H, I } }))) continue;
  const block = args.quick ? 64 : 128;
  const scaleBlock: [number, number] | undefined = format === 'fp8' ? [block, block] : undefined;
  const host = {
    router: randomHostWeight('bf16', E, H, { seed: 1 }),
    gateUp: randomHostWeight(format, 2 * I, H, {
      numExperts: E,
      numRowGroups: format === 'nvfp4' ? 2 : undefined,
      scaleBlock,
      seed: 2,
    }),
    down: randomHostWeight(format, H, I, { numExperts: E, scaleBlock, seed: 3 }),
  };
  const routerRows = expertRows(host.router, [0]);
  const weights: MoeBlockWeights = {
    router: uploadHostWeight(gpu, 'mlp.gate', host.router),
    gateUp: uploadHostWeight(gpu, 'mlp.experts.gate_up_proj', host.gateUp),
    down: uploadHostWeight(gpu, 'mlp.experts.down_proj', host.down),
  };
  const expertBytes =
    weightBytesPerExpert(format, 2 * I, H, host.gateUp.scaleBlock) +
    weightBytesPerExpert(format, H, I, host.down.scaleBlock);
  const moe = await MoeBlock.create(gpu, weights, { topK: K, normTopk: true });
  for (const T of tokenCounts) {
    const shape = { T, E, k: K, H, I };
    if (runner.skips({ name, shape })) continue;
    const scratch = moe.createScratch(T);
    const inputs = T <= 8 ? DECODE_INPUTS : 1;
    const xs = Array.from({ length: inputs }, (_, i) => randomF32(T * H, 1000 * T + i, 1));
    const residual = randomF32(T * H, 77 + T, 4);
    const out = createBuffer(gpu, 'hidden', T * H * 4);
    const xBufs = xs.map((x, i) => createBufferFrom(gpu, `x#${i}`, x));
    const ds = xBufs.map((x) => moe.bind({ x, out, scratch }).forTokens(T));
    const path = moe.bind({ x: xBufs[0], out, scratch }).pathFor(T);
    // the active experts (bytes) are known once the router has run: measured in check()
    let active = T === 1 ? K : E;
    const c = {
      name,
      shape: { ...shape, path },
      get bytes() {
        return active * expertBytes + E * H * 2;
      },
      flops: 2 * T * K * 3 * I * H + 2 * T * E * H,
      async check(): Promise<CheckResult> {
        gpu.queue.writeBuffer(out, 0, residual);
        await runDispatches(gpu, [ds[0]]);
        const ids = await readU32(gpu, scratch.topkIds, T * K);
        const got = new Float32Array(await readBuffer(gpu, out));
        active = new Set(ids).size;
        for (const t of sampleIndices(T, 3)) {
          const x = xs[0].subarray(t * H, (t + 1) * H);
          const tIds = ids.subarray(t * K, (t + 1) * K);
          const probs = moeRouterRef(routerLogitsRef(x, routerRows, 1, E, H), 1, E, K, true);
          if (new Set(tIds).size !== K || tIds.some((e) => e >= E))
            return { ok: false, message: `token ${t}: invalid expert ids ${tIds.join(',')}` };
          for (let j = 0; j < K; j++) {
            const [a, b] = [tIds[j], probs.ids[j]];
            const [pa, pb] = [probs.probs[a], probs.probs[b]];
            if (a !== b && !(Math.abs(pa - pb) <= 1e-5 * pb && pa !== pb))
              return { ok: false, message: `token ${t} rank ${j}: expert ${a} (p ${pa}), reference ${b} (p ${pb})` };
          }
          const sub = {
            E: K,
            H,
            I,
            topK: K,
            normTopk: true,
            router: subRouter(routerRows, tIds),
            gateUp: expertRows(host.gateUp, tIds),
            down: expertRows(host.down, tIds),
          };
          const ref = moeBlockRef(sub, x, residual.subarray(t * H, (t + 1) * H), 1, Uint32Array.from(tIds.keys()), {
            f16Operands: path === 'prefill' && moe.gemmPath !== 'tiled',
          });
          for (let h = 0; h < H; h++) {
            const [g, r] = [got[t * H + h], ref.out[h]];
            if (!(Math.abs(g - r) <= 2 * ref.bound[h] + 1e-6))
              return { ok: false, message: `token ${t} h ${h}: gpu ${g} vs ref ${r} (bound ${ref.bound[h]})` };
          }
        }
        return { ok: true, message: `routing and outputs of sampled tokens match; ${active} experts active` };
      },
      encode(pass: GPUComputePassEncoder, rep: number) {
        ds[rep % ds.length].encode(pass);
      },
    };
    await runner.run(c);
    for (const b of [...xBufs, out, scratch.topkIds, scratch.topkWeights, scratch.logits, scratch.gateUp, scratch.act])
      b.destroy();
  }
  for (const w of Object.values(weights))
    for (const b of [w.data, w.blockScales, w.globalScales, w.scales, w.preScale]) b?.destroy();
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

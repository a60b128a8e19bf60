// q_norm / k_norm + interleaved M-RoPE micro-benchmark (kernels/rope.wgsl) with the fused paged-KV write, on the
// Qwen3-VL-30B-A3B attention: 32 query heads and 4 KV heads of 128 in a fused qkv row, mrope_section [24, 20, 20],
// theta 5e6, T = 1 (decode) and 512 (prefill), bf16 and fp8 (e4m3) caches. Each case is checked before timing:
// q and k of sampled tokens against the f64 reference (|gpu − ref| ≤ 2e-5 + 2e-5·|ref|, as test/kernels/rope.test.ts)
// and every cache byte against the host encoder applied to the GPU's own rotated k and the input v.
// bytes = q, k read and written (f32) + v read + K/V written to the cache + positions. The kernel rewrites q and k
// in place: timed repetitions keep normalizing already-rotated rows, which costs the same.
// Repetitions rotate over qkv copies writing disjoint cache blocks.
//   npx tsx bench/kernels/rope.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: T = 1 and 64 (same heads).
import { TokenStep } from '../../kernels/attention_step.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { KV_BLOCK_SIZE, type KvDtype, kvBytesPerElement, kvCacheBytes } from '../../kernels/kv_cache.js';
import { kvCacheWriteRef } from '../../kernels/reference/kv_cache.js';
import { qkNormRopeRef } from '../../kernels/reference/rope.js';
import { QkNormRope, type RopeConfig } from '../../kernels/rope.js';
import type { CheckResult } from './harness.js';
import {
  BenchRunner,
  measureStreamPeak,
  openBenchGpu,
  parseBenchArgs,
  rotationCopies,
  sampleIndices,
} from './harness.js';
import { compareOutputs, randomF32, randomInts } from './lib/check.js';

const [HQ, HKV, D] = [32, 4, 128];
const config: RopeConfig = { theta: 5e6, mropeSection: [24, 20, 20], eps: 1e-6 };
const STRIDE = (HQ + 2 * HKV) * D;
const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const qNorm = randomF32(D, 3, 0.5).map((v) => 1 + v);
const kNorm = randomF32(D, 4, 0.5).map((v) => 1 + v);
const normBufs = [createBufferFrom(gpu, 'q_norm', qNorm), createBufferFrom(gpu, 'k_norm', kNorm)];

/** (3, T) positions after a 1000-token prefix: text tokens (t = h = w) with an image-like grid every third token. */
function makePositions(T: number): Uint32Array {
  const p = new Uint32Array(3 * T);
  for (let t = 0; t < T; t++) {
    const img = t % 3 === 1;
    p[t] = 1000 + t;
    p[T + t] = img ? 1000 + t + (t % 5) : 1000 + t;
    p[2 * T + t] = img ? 1000 + t + (t % 7) : 1000 + t;
  }
  return p;
}

/** Token rows `tokens` of the q (or k) heads of a qkv buffer, packed (n, heads·D). */
function heads(x: Float32Array, tokens: number[], off: number, len: number): Float32Array {
  const out = new Float32Array(tokens.length * len);
  tokens.forEach((t, i) => out.set(x.subarray(t * STRIDE + off, t * STRIDE + off + len), i * len));
  return out;
}

for (const dtype of ['bf16', 'fp8e4m3'] as KvDtype[]) {
  const kernel = await QkNormRope.create(gpu, { numQHeads: HQ, numKvHeads: HKV, headDim: D, cacheDtype: dtype });
  const scales = dtype === 'fp8e4m3' ? { kScale: 0.03, vScale: 0.0125 } : {};
  for (const T of args.quick ? [1, 64] : [1, 512]) {
    const shape = { T, Hq: HQ, Hkv: HKV, D };
    if (runner.skips({ name: kernel.name, shape })) continue;
    const qkvBytes = T * STRIDE * 4;
    const copies = Math.min(
      64,
      args.quick ? rotationCopies(qkvBytes, 8 << 20, 32 << 20) : rotationCopies(qkvBytes, 256 << 20, 1 << 30),
    );
    const blocksPerCopy = Math.ceil(T / KV_BLOCK_SIZE);
    const cacheShape = { numBlocks: copies * blocksPerCopy, numKvHeads: HKV, headDim: D, dtype };
    const cache = {
      shape: cacheShape,
      k: createBuffer(gpu, 'cache/k', kvCacheBytes(cacheShape)),
      v: createBuffer(gpu, 'cache/v', kvCacheBytes(cacheShape)),
    };
    const qkv = randomF32(T * STRIDE, 21 + T, 2);
    const positions = makePositions(T);
    const posBuf = createBufferFrom(gpu, 'positions', positions);
    const step = new TokenStep(gpu, T);
    step.update(T);
    // copy r writes tokens into blocks [r·blocksPerCopy, (r + 1)·blocksPerCopy), in a shuffled order
    const order = randomInts(T, 1 << 30, 5);
    const rank = Array.from({ length: T }, (_, t) => t).sort((a, b) => order[a] - order[b]);
    const slotsOf = (r: number) => Uint32Array.from(rank, (s) => r * blocksPerCopy * KV_BLOCK_SIZE + s);
    const qkvBufs: GPUBuffer[] = [];
    const slotBufs: GPUBuffer[] = [];
    const ds = Array.from({ length: copies }, (_, r) => {
      qkvBufs.push(createBufferFrom(gpu, `qkv#${r}`, qkv));
      slotBufs.push(createBufferFrom(gpu, `slot_mapping#${r}`, slotsOf(r)));
      const bufs = { qkv: qkvBufs[r], positions: posBuf, qNorm: normBufs[0], kNorm: normBufs[1] };
      return kernel.bind({ ...bufs, slotMapping: slotBufs[r], cache }, step, config, { ...scales });
    });
    const elem = kvBytesPerElement[dtype];
    await runner.run({
      name: kernel.name,
      shape,
      bytes: T * ((HQ + HKV) * D * 8 + HKV * D * 4 + 2 * HKV * D * elem + 12),
      flops: 0,
      async check(): Promise<CheckResult> {
        const zero = new Uint8Array(kvCacheBytes(cacheShape));
        gpu.queue.writeBuffer(cache.k, 0, zero);
        gpu.queue.writeBuffer(cache.v, 0, zero);
        await runDispatches(gpu, [ds[0]]);
        const got = new Float32Array(await readBuffer(gpu, qkvBufs[0]));
        const tokens = sampleIndices(T, 32);
        const pos = new Uint32Array(3 * tokens.length);
        for (let a = 0; a < 3; a++) tokens.forEach((t, i) => (pos[a * tokens.length + i] = positions[a * T + t]));
        for (const [what, off, h, w] of [
          ['q', 0, HQ, qNorm],
          ['k', HQ * D, HKV, kNorm],
        ] as const) {
          const ref = qkNormRopeRef(heads(qkv, tokens, off, h * D), tokens.length, h, D, pos, w, config);
          const r = compareOutputs(heads(got, tokens, off, h * D), ref, { atol: 2e-5, rtol: 2e-5, what });
          if (!r.ok) return r;
        }
        const wantK = zero.slice().buffer;
        const wantV = zero.slice().buffer;
        const kGot = got.subarray(HQ * D);
        const vIn = qkv.subarray((HQ + HKV) * D);
        kvCacheWriteRef(cacheShape, wantK, wantV, kGot, vIn, slotsOf(0), T, {
          ...scales,
          kStride: STRIDE,
          vStride: STRIDE,
        });
        for (const [which, buf, want] of [
          ['k', cache.k, wantK],
          ['v', cache.v, wantV],
        ] as const) {
          const a = new Uint8Array(await readBuffer(gpu, buf));
          const w = new Uint8Array(want);
          const bad = a.findIndex((b, i) => b !== w[i]);
          if (bad >= 0) return { ok: false, message: `cache ${which}: first difference at byte ${bad}` };
        }
        return { ok: true, message: `${tokens.length} tokens' q/k within tolerance, cache bytes equal` };
      },
      encode(pass, rep) {
        ds[rep % ds.length].encode(pass);
      },
    });
    for (const b of [...qkvBufs, ...slotBufs, posBuf, step.uniform, cache.k, cache.v]) b.destroy();
  }
}
for (const b of normBufs) b.destroy();
const code = runner.finish();
gpu.destroy();
process.exit(code);

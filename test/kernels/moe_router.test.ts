// MoE router (kernels/moe_router.wgsl) vs the f64 reference: E = 13 and 128, k = 1, 2, 8, T = 1, 5, 33, from logits
// and from x with a bf16 / f32 router weight, with and without norm_topk_prob, exact ties, a guard region after the
// outputs, and setTokens on a binding sized for more tokens.
// Tolerances: ids must equal the reference's wherever the reference probabilities differ by more than the f32 error
// bound (a swap of two experts closer than that is allowed; exact ties must resolve lowest id first, as the
// reference does). Weights: |gpu − ref| ≤ rtol·|ref| + 1e-12, rtol = 2e-6 from logits (exp, sum and divide in f32), and
// with x input 4·δ + 2e-6, δ = (H + 16)·2^-24·max_e Σ_h |x_h·w_eh| the f32 error bound of a logit.
import { describe, expect, it } from 'vitest';
import { f32ToBf16Bits, fromF16Array, toF16Array } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { MoeRouter, type MoeRouterVariant } from '../../kernels/moe_router.js';
import { moeRouterRef, routerLogitsRef } from '../../kernels/reference/moe_router.js';
import type { GpuWeight } from '../../kernels/weight_format.js';
import { randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;
const GUARD = 16; // u32 words after each output

function guarded(g: Gpu, label: string, words: number): GPUBuffer {
  const buf = createBuffer(g, label, (words + GUARD) * 4);
  g.queue.writeBuffer(buf, 0, new Uint32Array(words + GUARD).fill(SENTINEL));
  return buf;
}

async function readGuarded(g: Gpu, buf: GPUBuffer, words: number, written: number): Promise<Uint32Array> {
  const all = new Uint32Array(await readBuffer(g, buf));
  const untouched = all.subarray(written, words + GUARD).every((v) => v === SENTINEL);
  expect(untouched, `${buf.label}: written past ${written} words`).toBe(true);
  return all.slice(0, written);
}

interface Outcome {
  ids: Uint32Array;
  weights: Float32Array;
}

/** Checks GPU ids/weights of T tokens against the reference probabilities (see the header for the rules). */
function checkRouting(
  name: string,
  gpuOut: Outcome,
  probs: Float64Array,
  T: number,
  E: number,
  k: number,
  norm: boolean,
  rtol: ArrayLike<number>,
) {
  for (let t = 0; t < T; t++) {
    const p = probs.subarray(t * E, (t + 1) * E);
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b] - p[a] || a - b);
    const ids = Array.from(gpuOut.ids.subarray(t * k, (t + 1) * k));
    expect(new Set(ids).size, `${name} token ${t}: repeated expert in ${ids}`).toBe(k);
    let total = 0;
    for (const e of ids) {
      expect(e, `${name} token ${t}: expert id ${e} out of range`).toBeLessThan(E);
      total += p[e];
    }
    for (let j = 0; j < k; j++) {
      const [got, want] = [ids[j], order[j]];
      if (got !== want) {
        const close = p[got] !== p[want] && Math.abs(p[got] - p[want]) <= 4 * rtol[t] * p[want] + 1e-30;
        expect(
          close,
          `${name} token ${t} rank ${j}: expert ${got} (p ${p[got]}), reference ${want} (p ${p[want]})`,
        ).toBe(true);
      }
      const w = norm ? p[got] / total : p[got];
      const d = Math.abs(gpuOut.weights[t * k + j] - w);
      expect(
        d <= rtol[t] * w + 1e-12,
        `${name} token ${t} rank ${j}: weight ${gpuOut.weights[t * k + j]} vs ${w}`,
      ).toBe(true);
    }
  }
}

function softmaxRows(logits: Float64Array, T: number, E: number): Float64Array {
  return moeRouterRef(logits, T, E, 1, false).probs;
}

describe.skipIf(!gpu)('moe_router', () => {
  const g = gpu!;

  async function runRouter(
    variant: MoeRouterVariant,
    bufs: { x?: GPUBuffer; weight?: GpuWeight; logits?: GPUBuffer },
    T: number,
    E: number,
    k: number,
    o: { xStride?: number; maxTokens?: number } = {},
  ): Promise<Outcome> {
    const router = await MoeRouter.create(g, variant);
    const maxTokens = o.maxTokens ?? T;
    const ids = guarded(g, 'topk_ids', maxTokens * k);
    const weights = guarded(g, 'topk_weights', maxTokens * k);
    const d = router.bind(
      { ...bufs, topkIds: ids, topkWeights: weights },
      { tokens: maxTokens, topK: k, numExperts: E, xStride: o.xStride, maxTokens },
    );
    if (T !== maxTokens) d.setTokens(T);
    await runDispatches(g, [d]);
    return {
      ids: await readGuarded(g, ids, maxTokens * k, T * k),
      weights: new Float32Array((await readGuarded(g, weights, maxTokens * k, T * k)).buffer),
    };
  }

  /** Logits with distinct values 0.05 apart, plus exact ties: a copy of each token's best and an all-equal token. */
  function tiedLogits(T: number, E: number, seed: number): Float32Array {
    const rand = seededRandom(seed);
    const out = new Float32Array(T * E);
    for (let t = 0; t < T; t++) {
      const perm = Array.from({ length: E }, (_, i) => i).sort(() => rand() - 0.5);
      for (let e = 0; e < E; e++) out[t * E + e] = (perm[e] - E / 2) * 0.05 * (1 + (t % 3));
      const best = perm.indexOf(E - 1);
      const twin = (best + 1 + (t % (E - 1))) % E; // an exact tie with the best, on either side of it
      out[t * E + twin] = out[t * E + best];
      const second = perm.indexOf(E - 3);
      out[t * E + ((second + 5) % E)] = out[t * E + second]; // a tie lower in the ranking (at the k boundary for k=2..3)
    }
    if (T > 2) out.fill(0.25, E, 2 * E); // token 1: every expert tied
    return out;
  }

  for (const E of [13, 128])
    for (const norm of [true, false])
      it(`from logits (E=${E}, norm=${norm}): k = 1, 2, 8; T = 1, 5, 33; ties`, async () => {
        for (const [i, k] of [1, 2, 8].entries())
          for (const T of [1, 5, 33]) {
            const logits = tiedLogits(T, E, E * 100 + i * 10 + T);
            const out = await runRouter(
              { input: 'logits', normTopk: norm },
              { logits: createBufferFrom(g, 'logits', logits) },
              T,
              E,
              k,
            );
            const probs = softmaxRows(Float64Array.from(logits), T, E);
            const ref = moeRouterRef(Float64Array.from(logits), T, E, k, norm);
            // exact ties resolve by id and distinct logits are far apart: the ids must match exactly
            expect(Array.from(out.ids), `E=${E} k=${k} T=${T}`).toEqual(Array.from(ref.ids));
            checkRouting(`logits E=${E} k=${k} T=${T}`, out, probs, T, E, k, norm, new Float64Array(T).fill(2e-6));
          }
      });

  it('all experts tied and underflowing probabilities pick the lowest ids', async () => {
    const E = 13;
    const logits = new Float32Array(2 * E).fill(-100);
    logits.fill(0, 0, E); // token 0: all equal
    logits[E + 9] = 0; // token 1: one clear winner, the rest tied far below (exp underflows in f32)
    logits[E + 11] = 0;
    const out = await runRouter(
      { input: 'logits', normTopk: true },
      { logits: createBufferFrom(g, 'logits', logits) },
      2,
      E,
      8,
    );
    expect(Array.from(out.ids)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 0, 1, 2, 3, 4, 5]);
    for (let j = 0; j < 8; j++) expect(out.weights[j]).toBeCloseTo(1 / 8, 6);
    expect(out.weights[8]).toBeCloseTo(0.5, 6);
    expect(out.weights[9]).toBeCloseTo(0.5, 6);
    for (let j = 10; j < 16; j++) expect(out.weights[j]).toBeLessThan(1e-30);
  });

  for (const wf of ['bf16', 'f32'] as const)
    it(`from x and a ${wf} router weight: E = 13, 128; H = 48, 272; k = 1, 2, 8; T = 1, 5, 33`, async () => {
      const acts = wf === 'bf16' && g.caps.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const);
      const cases: Array<[number, number, number, number]> = [
        [13, 48, 1, 1],
        [13, 272, 2, 5],
        [128, 48, 8, 33],
        [128, 272, 2, 5],
        [13, 48, 8, 33],
      ];
      for (const act of acts)
        for (const [ci, [E, H, k, T]] of cases.entries()) {
          const xStride = ci === 1 ? H + 4 : H;
          const seed = E * 1000 + H + ci + (act === 'f16' ? 7 : 0);
          let x = randomArray(T * xStride, seed, 1);
          let xBuf: GPUBuffer;
          if (act === 'f16') {
            const bits = toF16Array(x);
            x = fromF16Array(bits);
            xBuf = createBufferFrom(g, 'x', bits);
          } else xBuf = createBufferFrom(g, 'x', x);
          // weights spread the logits (std ≈ 2.5 at H 48) so most rankings are decisive; rows 2 and E-1 are equal
          let w = randomArray(E * H, seed + 1, 10 / Math.sqrt(H) / 0.58);
          w.copyWithin((E - 1) * H, 2 * H, 3 * H);
          let data: ArrayBufferView = w;
          if (wf === 'bf16') {
            const bits = Uint16Array.from(w, (v) => f32ToBf16Bits(v));
            w = Float32Array.from(bits, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]);
            data = bits;
          }
          const weight: GpuWeight = {
            label: 'mlp.gate',
            format: wf,
            numExperts: 1,
            N: E,
            K: H,
            data: createBufferFrom(g, 'mlp.gate.data', data),
          };
          const xDense = new Float64Array(T * H);
          for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) xDense[t * H + h] = x[t * xStride + h];
          const logits = routerLogitsRef(xDense, w, T, E, H);
          const rtol = new Float64Array(T);
          for (let t = 0; t < T; t++) {
            let worst = 0;
            for (let e = 0; e < E; e++) {
              let abs = 0;
              for (let h = 0; h < H; h++) abs += Math.abs(xDense[t * H + h] * w[e * H + h]);
              worst = Math.max(worst, abs);
            }
            rtol[t] = 4 * (H + 16) * 2 ** -24 * worst + 2e-6;
          }
          const out = await runRouter(
            { input: 'x', weightFormat: wf, act, normTopk: ci % 2 === 0 },
            { x: xBuf, weight },
            T,
            E,
            k,
            { xStride },
          );
          const name = `x(${act}) ${wf} E=${E} H=${H} k=${k} T=${T}`;
          checkRouting(name, out, softmaxRows(logits, T, E), T, E, k, ci % 2 === 0, rtol);
          // the twin rows tie exactly on both sides: where both are chosen, expert 2 ranks first
          for (let t = 0; t < T; t++) {
            const ids = Array.from(out.ids.subarray(t * k, (t + 1) * k));
            if (ids.includes(E - 1))
              expect(ids.indexOf(2), `${name} token ${t}: tie order`).toBe(ids.indexOf(E - 1) - 1);
          }
        }
    });

  it('setTokens on a binding sized for 33 tokens writes only the first T', async () => {
    const [E, k] = [13, 2];
    const logits = tiedLogits(33, E, 5);
    const out = await runRouter(
      { input: 'logits', normTopk: true },
      { logits: createBufferFrom(g, 'logits', logits) },
      5,
      E,
      k,
      { maxTokens: 33 },
    );
    expect(Array.from(out.ids)).toEqual(Array.from(moeRouterRef(logits, 5, E, k, true).ids));
  });

  it('rejects bad shapes, naming the router', async () => {
    const router = await MoeRouter.create(g, { input: 'x', normTopk: true });
    const buf = createBuffer(g, 'buf', 4096);
    const weight: GpuWeight = { label: 'layers.3.mlp.gate', format: 'bf16', numExperts: 1, N: 8, K: 32, data: buf };
    const bind = (k: number, w: GpuWeight = weight) =>
      router.bind({ x: buf, weight: w, topkIds: buf, topkWeights: buf }, { tokens: 1, topK: k });
    expect(() => bind(9)).toThrow(/layers\.3\.mlp\.gate.*top-k 9 must be 1\.\.min\(E 8, 32\)/);
    expect(() => bind(2, { ...weight, format: 'f32' })).toThrow(/is f32, the kernel was built for bf16/);
    expect(() => bind(2, { ...weight, K: 24 })).toThrow(/hidden size 24 must be a positive multiple of 16/);
    expect(() => bind(2, { ...weight, N: 513 })).toThrow(/513 experts/);
    const d = bind(2);
    expect(() => d.setTokens(2)).toThrow(/2 tokens, the buffers hold 1\.\.1/);
  });
});

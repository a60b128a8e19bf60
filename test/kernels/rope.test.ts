// rope (q_norm/k_norm + interleaved M-RoPE, optionally fused with the KV cache write) vs the f64 reference.
// Tolerance: |gpu − ref| ≤ 2e-5 + 2e-5·|ref|. The reference rounds inv_freq and the angle to f32 as HF does; what
// remains is the f32 norm (~1e-6 relative), our cos/sin (~1 ulp after exact range reduction) and output rounding.
// With the cache write, every cache byte must equal kv_cache_write's host encoder applied to the GPU's own rotated
// k (and the untouched v): the fused path must store exactly what the separate kernel would.
// Also checked: v heads and a guard region after qkv stay bit-identical; for text tokens (t = h = w) the
// reference equals ordinary 1-D RoPE computed in f64 (≤ 1e-4: the f32 angle rounding HF does, positions < 300).
import { describe, expect, it } from 'vitest';
import { TokenStep } from '../../kernels/attention_step.js';
import { createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { type KvCacheShape, type KvDtype, kvCacheBytes, SLOT_SKIP } from '../../kernels/kv_cache.js';
import { kvCacheWriteRef } from '../../kernels/reference/kv_cache.js';
import { rmsNormRef } from '../../kernels/reference/rms_norm.js';
import { plainRopeRef, qkNormRopeRef } from '../../kernels/reference/rope.js';
import { QkNormRope, type RopeConfig } from '../../kernels/rope.js';
import { compareClose, randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const GUARD = 64;
const SENTINEL = -12345.5;

interface Case {
  hq: number;
  hkv: number;
  D: number;
  T: number;
  section: [number, number, number];
  theta: number;
  text?: boolean;
  cache?: KvDtype;
  /** Extra elements at the end of each token row (a padded qkv layout). */
  pad?: number;
}

const cases: Case[] = [
  { hq: 4, hkv: 2, D: 32, T: 13, section: [6, 5, 5], theta: 5e6 },
  { hq: 4, hkv: 2, D: 32, T: 7, section: [6, 5, 5], theta: 5e6, text: true },
  { hq: 8, hkv: 1, D: 128, T: 5, section: [24, 20, 20], theta: 1e6, pad: 12 },
  { hq: 4, hkv: 2, D: 64, T: 3, section: [12, 10, 10], theta: 1e4, text: true },
  { hq: 4, hkv: 2, D: 32, T: 11, section: [6, 5, 5], theta: 5e6, cache: 'bf16' },
  { hq: 8, hkv: 1, D: 128, T: 5, section: [24, 20, 20], theta: 1e6, cache: 'fp8e4m3' },
  { hq: 4, hkv: 2, D: 64, T: 3, section: [12, 10, 10], theta: 1e4, cache: 'f32', pad: 4 },
];

/** (3, T) positions: text runs (t = h = w) around an image-like grid, some far out (up to ~40k). */
function makePositions(T: number, text: boolean, seed: number): Uint32Array {
  const rand = seededRandom(seed);
  const p = new Uint32Array(3 * T);
  for (let t = 0; t < T; t++) {
    const base = t < 2 ? t : Math.floor(rand() * (text ? 290 : 40000));
    const img = !text && t % 3 === 1;
    p[t] = base;
    p[T + t] = img ? base + 1 + (t % 5) : base;
    p[2 * T + t] = img ? base + 2 + (t % 7) : base;
  }
  return p;
}

function slice3(x: Float32Array, T: number, stride: number, off: number, len: number): Float32Array {
  const out = new Float32Array(T * len);
  for (let t = 0; t < T; t++) out.set(x.subarray(t * stride + off, t * stride + off + len), t * len);
  return out;
}

describe.skipIf(!gpu)('rope', () => {
  const g = gpu!;
  for (const c of cases) {
    const name = `rope(Hq=${c.hq},Hkv=${c.hkv},D=${c.D},T=${c.T},section=${c.section}${c.text ? ',text' : ''}${c.cache ? `,write ${c.cache}` : ''})`;
    it(name, async () => {
      const { hq, hkv, D, T } = c;
      const config: RopeConfig = { theta: c.theta, mropeSection: c.section, eps: 1e-6 };
      const stride = (hq + 2 * hkv) * D + (c.pad ?? 0);
      const qkv = randomArray(T * stride, 100 + T + D, 2);
      const positions = makePositions(T, c.text ?? false, T * 3 + D);
      const qNorm = randomArray(D, 5 + D, 0.5).map((v) => 1 + v);
      const kNorm = randomArray(D, 6 + D, 0.5).map((v) => 1 + v);
      // Rows T, T+1 (the step maximum) and a guard stay sentinels.
      const padded = new Float32Array((T + 2) * stride + GUARD).fill(SENTINEL);
      padded.set(qkv);
      const qkvBuf = createBufferFrom(g, 'qkv', padded);
      const kernel = await QkNormRope.create(g, { numQHeads: hq, numKvHeads: hkv, headDim: D, cacheDtype: c.cache });
      const step = new TokenStep(g, T + 2); // maxTokens above this step's count: positions rows are T apart
      step.update(T);
      const posBuf = createBufferFrom(g, 'positions', new Uint32Array([...positions, 0, 0, 0, 0, 0, 0]));
      const shape: KvCacheShape = { numBlocks: 3, numKvHeads: hkv, headDim: D, dtype: c.cache ?? 'f32' };
      const cacheBytes = kvCacheBytes(shape);
      const initial = new Uint8Array(cacheBytes).fill(0x5a);
      const cache = { shape, k: createBufferFrom(g, 'ck', initial), v: createBufferFrom(g, 'cv', initial) };
      const slots = Uint32Array.from({ length: T + 2 }, (_, i) => (i * 7 + 3) % (3 * 16));
      if (T > 3) slots[2] = SLOT_SKIP;
      const scales = c.cache === 'fp8e4m3' ? { kScale: 0.03, vScale: 0.0125 } : {};
      const d = kernel.bind(
        {
          qkv: qkvBuf,
          positions: posBuf,
          qNorm: createBufferFrom(g, 'qn', qNorm),
          kNorm: createBufferFrom(g, 'kn', kNorm),
          ...(c.cache ? { slotMapping: createBufferFrom(g, 'slots', slots), cache } : {}),
        },
        step,
        config,
        { tokenStride: stride, ...scales },
      );
      await runDispatches(g, [d]);
      const got = new Float32Array(await readBuffer(g, qkvBuf));

      const qRef = qkNormRopeRef(slice3(qkv, T, stride, 0, hq * D), T, hq, D, positions, qNorm, config);
      const kRef = qkNormRopeRef(slice3(qkv, T, stride, hq * D, hkv * D), T, hkv, D, positions, kNorm, config);
      const qGot = slice3(got, T, stride, 0, hq * D);
      const kGot = slice3(got, T, stride, hq * D, hkv * D);
      for (const [what, a, r] of [
        ['q', qGot, qRef],
        ['k', kGot, kRef],
      ] as const) {
        const rep = compareClose(a, r, { atol: 2e-5, rtol: 2e-5, name: `${kernel.name} ${what}` });
        expect(rep.ok, rep.message).toBe(true);
      }
      // v heads, row padding and the guard are untouched.
      for (let t = 0; t < T; t++) {
        for (let e = (hq + hkv) * D; e < stride; e++) {
          if (got[t * stride + e] !== qkv[t * stride + e]) expect.fail(`token ${t} element ${e} changed`);
        }
      }
      expect(
        [...got.subarray(T * stride)].every((v) => v === SENTINEL),
        "write past this step's rows of qkv",
      ).toBe(true);

      if (c.text) {
        // Text tokens: M-RoPE is plain RoPE of the normed heads at the t position.
        const normed = rmsNormRef(slice3(qkv, T, stride, 0, hq * D), qNorm, T * hq, D, 1e-6);
        const plain = plainRopeRef(normed, T, hq, D, positions.subarray(0, T), c.theta);
        const rep = compareClose(qRef, plain, { atol: 1e-4, rtol: 0, name: 'M-RoPE (t=h=w) vs 1-D RoPE' });
        expect(rep.ok, rep.message).toBe(true);
      }

      if (c.cache) {
        const wantK = initial.slice().buffer;
        const wantV = initial.slice().buffer;
        const vIn = slice3(qkv, T, stride, (hq + hkv) * D, hkv * D);
        kvCacheWriteRef(shape, wantK, wantV, kGot, vIn, slots, T, scales);
        for (const [which, buf, want] of [
          ['k', cache.k, wantK],
          ['v', cache.v, wantV],
        ] as const) {
          const a = new Uint8Array(await readBuffer(g, buf));
          const w = new Uint8Array(want);
          const bad = a.findIndex((b, i) => b !== w[i]);
          expect(bad, `${kernel.name} cache ${which}: first difference at byte ${bad}`).toBe(-1);
        }
      }
    });
  }

  it('rejects an mrope_section that does not cover head_dim/2 and a short positions buffer, naming the layer', async () => {
    const kernel = await QkNormRope.create(g, { numQHeads: 4, numKvHeads: 2, headDim: 32 });
    const step = new TokenStep(g, 4);
    const buf = createBufferFrom(g, 'x', new Float32Array(1024));
    const bufs = { qkv: buf, positions: buf, qNorm: buf, kNorm: buf };
    expect(() =>
      kernel.bind(bufs, step, { theta: 1e4, mropeSection: [24, 20, 20], eps: 1e-6 }, {}, 'layers.2.rope'),
    ).toThrow(
      /layers\.2\.rope: mrope_section \[24, 20, 20\] must be 3 non-negative integers summing to head_dim\/2 = 16/,
    );
    const small = createBufferFrom(g, 'p', new Uint32Array(4));
    expect(() =>
      kernel.bind({ ...bufs, positions: small }, step, { theta: 1e4, mropeSection: [6, 5, 5], eps: 1e-6 }, {}, 'l.0'),
    ).toThrow(/l\.0: positions has 16 bytes, expected at least 48 for 4 tokens/);
  });
});

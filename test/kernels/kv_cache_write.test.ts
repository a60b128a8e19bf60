// kv_cache_write WGSL vs the host encoder (kernels/reference/kv_cache.ts), for every KV dtype.
// Tolerance: none. Every byte of both cache buffers must equal the reference: bf16 is round-to-nearest-even of the
// f32 input, fp8 is RNE + saturation of fround(x · fround(1/scale)) (the GPU's correctly rounded f32 multiply), f32
// is a copy. Slots the step does not write keep their sentinel bytes, and so does a guard region after each buffer.
import { describe, expect, it } from 'vitest';
import { TokenStep } from '../../kernels/attention_step.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { type KvCache, type KvCacheShape, type KvDtype, kvCacheBytes, SLOT_SKIP } from '../../kernels/kv_cache.js';
import { KvCacheWrite } from '../../kernels/kv_cache_write.js';
import { kvCacheWriteRef } from '../../kernels/reference/kv_cache.js';
import { randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const GUARD_BYTES = 256;
const SENTINEL_BYTE = 0xa5;

/** `count` distinct slots out of numBlocks·16, shuffled, with token `skipAt` marked as padding. */
function shuffledSlots(numBlocks: number, count: number, seed: number, skipAt: number): Uint32Array {
  const rand = seededRandom(seed);
  const all = Array.from({ length: numBlocks * 16 }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  const slots = Uint32Array.from(all.slice(0, count));
  if (skipAt >= 0) slots[skipAt] = SLOT_SKIP;
  return slots;
}

/** Values that hit E4M3's corners once divided by a power-of-two scale: ties, saturation, subnormals, -0. */
function withSpecialValues(x: Float32Array, scale: number): Float32Array {
  const special = [1 + 1 / 16, 1 + 3 / 16, -(1 + 5 / 16), 460, -1000, 448, 2 ** -8, 3 * 2 ** -10, -(2 ** -12), -0, 0];
  special.forEach((s, i) => (x[(i * 37) % x.length] = s * scale));
  return x;
}

const cases: Array<{ dtype: KvDtype; numKvHeads: number; headDim: number; numTokens: number; fused?: boolean }> = [
  { dtype: 'bf16', numKvHeads: 2, headDim: 32, numTokens: 21, fused: true },
  { dtype: 'bf16', numKvHeads: 4, headDim: 128, numTokens: 19 },
  { dtype: 'fp8e4m3', numKvHeads: 2, headDim: 32, numTokens: 21 },
  { dtype: 'fp8e4m3', numKvHeads: 4, headDim: 128, numTokens: 19 },
  { dtype: 'fp8e4m3', numKvHeads: 1, headDim: 64, numTokens: 3, fused: true },
  { dtype: 'f32', numKvHeads: 1, headDim: 64, numTokens: 17 },
];

describe.skipIf(!gpu)('kv_cache_write', () => {
  const g = gpu!;
  for (const c of cases) {
    const name = `kv_cache_write(kv=${c.dtype},Hkv=${c.numKvHeads},D=${c.headDim},T=${c.numTokens}${c.fused ? ',fused qkv' : ''})`;
    it(name, async () => {
      const shape: KvCacheShape = { numBlocks: 7, numKvHeads: c.numKvHeads, headDim: c.headDim, dtype: c.dtype };
      const kernel = await KvCacheWrite.create(g, c);
      const T = c.numTokens;
      const rowElems = c.numKvHeads * c.headDim;
      // Fused layout: each token row is [q (4 heads) | k | v], as a fused QKV projection writes it.
      const qElems = c.fused ? 4 * c.headDim : 0;
      const stride = c.fused ? qElems + 2 * rowElems : rowElems;
      const scales = c.dtype === 'fp8e4m3' ? { kScale: 0.0625, vScale: 0.037 } : {};
      const k = withSpecialValues(randomArray(T * stride, 11 + T, 3), scales.kScale ?? 1);
      const v = withSpecialValues(randomArray(T * stride, 12 + T, 3), scales.vScale ?? 1);
      let kSlice: { buffer: GPUBuffer; offset: number; size: number };
      let vSlice: typeof kSlice;
      let kOffset = 0;
      let vOffset = 0;
      if (c.fused) {
        const qkv = new Float32Array(T * stride);
        for (let t = 0; t < T; t++) {
          qkv.set(k.subarray(t * stride + qElems, t * stride + qElems + rowElems), t * stride + qElems);
          qkv.set(v.subarray(t * stride + qElems + rowElems, (t + 1) * stride), t * stride + qElems + rowElems);
        }
        k.set(qkv);
        v.set(qkv);
        const buf = createBufferFrom(g, 'qkv', qkv);
        kOffset = qElems;
        vOffset = qElems + rowElems;
        kSlice = { buffer: buf, offset: kOffset * 4, size: buf.size - kOffset * 4 };
        vSlice = { buffer: buf, offset: vOffset * 4, size: buf.size - vOffset * 4 };
      } else {
        const kb = createBufferFrom(g, 'k', k);
        const vb = createBufferFrom(g, 'v', v);
        kSlice = { buffer: kb, offset: 0, size: kb.size };
        vSlice = { buffer: vb, offset: 0, size: vb.size };
      }
      const slots = shuffledSlots(shape.numBlocks, T, T * 7 + c.headDim, T > 3 ? 5 : -1);
      const bytes = kvCacheBytes(shape);
      const initial = new Uint8Array(bytes + GUARD_BYTES).fill(SENTINEL_BYTE);
      const cache: KvCache = {
        shape,
        k: createBufferFrom(g, 'cache/k', initial),
        v: createBufferFrom(g, 'cache/v', initial),
      };
      const step = new TokenStep(g, T);
      step.update(T);
      const d = kernel.bind({ k: kSlice, v: vSlice, slotMapping: createBufferFrom(g, 'slots', slots), cache }, step, {
        ...scales,
        kTokenStride: stride,
        vTokenStride: stride,
      });
      await runDispatches(g, [d]);

      const wantK = initial.slice().buffer;
      const wantV = initial.slice().buffer;
      kvCacheWriteRef(shape, wantK, wantV, k.subarray(kOffset), v.subarray(vOffset), slots, T, {
        ...scales,
        kStride: stride,
        vStride: stride,
      });
      for (const [which, buf, want] of [
        ['k', cache.k, wantK],
        ['v', cache.v, wantV],
      ] as const) {
        const got = new Uint8Array(await readBuffer(g, buf, 0, bytes + GUARD_BYTES));
        const w = new Uint8Array(want);
        const bad = got.findIndex((b, i) => b !== w[i]);
        const where =
          bad < 0 ? '' : bad >= bytes ? `guard byte ${bad - bytes}` : `cache byte ${bad} (${got[bad]} vs ${w[bad]})`;
        expect(bad, `${kernel.name} ${which}: first difference at ${where}`).toBe(-1);
      }
    });
  }

  it('rejects a cache of another dtype and a short slot mapping, naming the layer', async () => {
    const kernel = await KvCacheWrite.create(g, { dtype: 'bf16', numKvHeads: 2, headDim: 32 });
    const step = new TokenStep(g, 8);
    const buf = createBuffer(g, 'x', 4096);
    const shape: KvCacheShape = { numBlocks: 1, numKvHeads: 2, headDim: 32, dtype: 'fp8e4m3' };
    expect(() =>
      kernel.bind({ k: buf, v: buf, slotMapping: buf, cache: { shape, k: buf, v: buf } }, step, {}, 'layers.3.kv'),
    ).toThrow(/layers\.3\.kv: cache is \(fp8e4m3, Hkv 2, D 32\), expected \(bf16, Hkv 2, D 32\)/);
    const small = createBuffer(g, 'slots', 16);
    expect(() =>
      kernel.bind(
        { k: buf, v: buf, slotMapping: small, cache: { shape: { ...shape, dtype: 'bf16' }, k: buf, v: buf } },
        step,
        {},
        'layers.3.kv',
      ),
    ).toThrow(/layers\.3\.kv: slotMapping has 16 bytes, expected at least 32 for 8 tokens/);
  });
});

// elementwise WGSL (residual add, silu·mul, MoE combine, casts) vs the f64 CPU references on odd shapes.
// Tolerances: f32 outputs differ from f64 by one or a few f32 roundings (rtol 1e-6, atol 1e-6; silu adds exp's
// error: rtol 2e-6); f16 inputs are rounded before both sides see them; an f16 output adds one f16 rounding
// (rtol 2^-11 ≈ 4.9e-4, atol 1e-7 for subnormals). Casts are exact or round-to-nearest-even, compared bit for bit.
// Every output buffer carries a 64-byte guard region after its end that must stay untouched.
import { describe, expect, it } from 'vitest';
import { fromF16Array, toF16Array } from '../../core/float16.js';
import { Cast, MoeCombine, ResidualAdd, SiluMul } from '../../kernels/elementwise.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { moeCombineRef, residualAddRef, siluMulRef } from '../../kernels/reference/elementwise.js';
import type { FloatType } from '../../kernels/wgsl_types.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;
const GUARD_BYTES = 64;

/** A buffer holding `bytes` of output followed by a sentinel-filled guard region. */
function guardedOutput(g: Gpu, label: string, bytes: number, init?: ArrayBufferView): GPUBuffer {
  const total = Math.ceil(bytes / 4) * 4 + GUARD_BYTES;
  const buf = createBuffer(g, label, total);
  const fill = new Uint32Array(total / 4).fill(SENTINEL);
  if (init) new Uint8Array(fill.buffer).set(new Uint8Array(init.buffer, init.byteOffset, init.byteLength));
  g.queue.writeBuffer(buf, 0, fill);
  return buf;
}

/** Reads `count` elements of `type` and checks the guard region after them. */
async function readGuarded(g: Gpu, buf: GPUBuffer, count: number, type: FloatType): Promise<Float32Array> {
  const raw = await readBuffer(g, buf);
  const bytes = count * (type === 'f16' ? 2 : 4);
  const guard = new Uint32Array(raw, Math.ceil(bytes / 4) * 4);
  expect(
    [...guard].every((v) => v === SENTINEL),
    `write past the end of ${buf.label}`,
  ).toBe(true);
  return type === 'f16' ? fromF16Array(new Uint16Array(raw, 0, count)) : new Float32Array(raw, 0, count);
}

/** Uploads `values` as `type` and returns the buffer plus the values both sides should use (f16-rounded). */
function upload(g: Gpu, label: string, values: Float32Array, type: FloatType): { buf: GPUBuffer; seen: Float32Array } {
  if (type === 'f16') {
    const bits = toF16Array(values);
    return { buf: createBufferFrom(g, label, bits), seen: fromF16Array(bits) };
  }
  return { buf: createBufferFrom(g, label, values), seen: values };
}

const rtolFor = (dst: FloatType, f32Rtol: number) => (dst === 'f16' ? 1e-3 : f32Rtol);

describe.skipIf(!gpu)('elementwise', () => {
  const g = gpu!;
  const types: FloatType[] = g?.caps.hasF16 ? ['f32', 'f16'] : ['f32'];

  for (const src of types) {
    it(`residual_add(src=${src},n=[1,7,1000,100003])`, async () => {
      const kernel = await ResidualAdd.create(g, { src });
      for (const n of [1, 7, 1000, 100_003]) {
        const h0 = randomArray(n, n, 4);
        const y = upload(g, 'y', randomArray(n, n + 1, 4), src);
        const h = guardedOutput(g, 'h', n * 4, h0);
        await runDispatches(g, [kernel.bind({ h, y: y.buf }, n)]);
        const got = await readGuarded(g, h, n, 'f32');
        const r = compareClose(got, residualAddRef(h0, y.seen), {
          atol: 1e-6,
          rtol: 1e-6,
          name: `${kernel.name} n=${n}`,
        });
        expect(r.ok, r.message).toBe(true);
      }
    });
  }

  for (const src of types)
    for (const dst of types) {
      it(`silu_mul(src=${src},dst=${dst},shape=[(1,1),(3,7),(17,96),(5,768)])`, async () => {
        const kernel = await SiluMul.create(g, { src, dst });
        for (const [rows, inter] of [
          [1, 1],
          [3, 7],
          [17, 96],
          [5, 768],
        ]) {
          const gu = upload(g, 'gateUp', randomArray(rows * 2 * inter, rows * 7 + inter, 6), src);
          const out = guardedOutput(g, 'out', rows * inter * (dst === 'f16' ? 2 : 4));
          await runDispatches(g, [kernel.bind({ gateUp: gu.buf, out }, { rows, intermediate: inter })]);
          const got = await readGuarded(g, out, rows * inter, dst);
          const ref = siluMulRef(gu.seen, rows, inter);
          const name = `${kernel.name} (${rows}, ${inter})`;
          const r = compareClose(got, ref, { atol: 1e-6, rtol: rtolFor(dst, 2e-6), name });
          expect(r.ok, r.message).toBe(true);
        }
      });
    }

  for (const src of types)
    for (const inPlace of [true, false]) {
      it(`moe_combine(src=${src},inplace=${inPlace},shape=[T,H,k]∈{(1,16,1),(3,100,2),(17,128,8),(2,2048,8)})`, async () => {
        const kernel = await MoeCombine.create(g, { src, inPlace });
        for (const [T, H, k] of [
          [1, 16, 1],
          [3, 100, 2],
          [17, 128, 8],
          [2, 2048, 8],
        ]) {
          const residual = randomArray(T * H, T * H, 2);
          const weights = randomArray(T * k, k + 5, 1).map(Math.abs);
          const y = upload(g, 'expertOut', randomArray(T * k * H, H + k, 3), src);
          const wBuf = createBufferFrom(g, 'weights', weights);
          const out = guardedOutput(g, 'out', T * H * 4, inPlace ? residual : undefined);
          const d = inPlace
            ? kernel.bind({ weights: wBuf, expertOut: y.buf, out }, { tokens: T, hidden: H, topK: k })
            : kernel.bind(
                { weights: wBuf, expertOut: y.buf, out, residual: createBufferFrom(g, 'residual', residual) },
                { tokens: T, hidden: H, topK: k },
              );
          await runDispatches(g, [d]);
          const got = await readGuarded(g, out, T * H, 'f32');
          const ref = moeCombineRef(residual, weights, y.seen, T, H, k);
          const r = compareClose(got, ref, { atol: 1e-6, rtol: 1e-6, name: `${kernel.name} (${T}, ${H}, ${k})` });
          expect(r.ok, r.message).toBe(true);
        }
      });
    }

  it('cast f32→f16→f32 rounds to nearest even and back exactly', async () => {
    if (!g.caps.hasF16) return;
    const down = await Cast.create(g, { src: 'f32', dst: 'f16' });
    const up = await Cast.create(g, { src: 'f16', dst: 'f32' });
    // Within f16's normal range: WGSL leaves out-of-range conversions indeterminate and may flush subnormals.
    const values = randomArray(1001, 3, 60_000);
    values.set([0, -0, 1, -1.5, 65504, -65504, 2049, 2051, 1e-4, 3.14159], 0);
    const n = values.length;
    const half = guardedOutput(g, 'half', n * 2);
    const back = guardedOutput(g, 'back', n * 4);
    await runDispatches(g, [
      down.bind({ x: createBufferFrom(g, 'x', values), out: half }, n),
      up.bind({ x: half, out: back }, n),
    ]);
    const raw = await readBuffer(g, half);
    const gotBits = new Uint16Array(raw, 0, n);
    const want = toF16Array(values);
    const bad = [...want].findIndex((b, i) => b !== gotBits[i]);
    expect(bad, bad >= 0 ? `f16 bits of ${values[bad]}: gpu ${gotBits[bad]}, ref ${want[bad]}` : '').toBe(-1);
    const got = await readGuarded(g, back, n, 'f32');
    const wantBack = fromF16Array(want);
    expect([...got].every((v, i) => Object.is(v, wantBack[i]))).toBe(true);
  });

  it('rejects short buffers and a residual given to the in-place combine, naming the label', async () => {
    const kernel = await MoeCombine.create(g, { src: 'f32', inPlace: true });
    const small = createBuffer(g, 'small', 16);
    expect(() =>
      kernel.bind(
        { weights: small, expertOut: small, out: small },
        { tokens: 2, hidden: 8, topK: 2 },
        'layers.3.mlp.combine',
      ),
    ).toThrow(/layers\.3\.mlp\.combine: expertOut has 16 bytes, expected at least 128/);
    const big = createBuffer(g, 'big', 4096);
    expect(() =>
      kernel.bind({ weights: big, expertOut: big, out: big, residual: big }, { tokens: 2, hidden: 8, topK: 2 }),
    ).toThrow(/in-place combine reads the residual from out/);
  });
});

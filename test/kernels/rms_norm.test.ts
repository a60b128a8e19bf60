// rms_norm WGSL vs the f64 CPU reference on odd shapes, every type variant, both reduction paths.
// Tolerance: f32 output differs from f64 by accumulation order (~1e-6 relative); f16 output adds one f16 rounding
// (relative 2^-11 ≈ 4.9e-4) and f16 input is rounded before both sides see it.
import { describe, expect, it } from 'vitest';
import { fromF16Array, toF16Array } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { rmsNormRef } from '../../kernels/reference/rms_norm.js';
import { RmsNorm, type RmsNormVariant } from '../../kernels/rms_norm.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

const shapes = [
  { rows: 1, cols: 1 },
  { rows: 3, cols: 7 },
  { rows: 17, cols: 128 },
  { rows: 5, cols: 1000 },
  { rows: 2, cols: 2048 },
  { rows: 70_000, cols: 3 }, // more rows than one grid dimension holds
];
const types: Array<Pick<RmsNormVariant, 'src' | 'dst'>> = [
  { src: 'f32', dst: 'f32' },
  { src: 'f16', dst: 'f32' },
  { src: 'f32', dst: 'f16' },
  { src: 'f16', dst: 'f16' },
];

describe.skipIf(!gpu)('rms_norm', () => {
  const g = gpu!;
  const reductions = g?.caps.hasSubgroups ? [false, true] : [false];
  for (const t of types) {
    for (const subgroups of reductions) {
      for (const wgSize of [64, 256]) {
        const variant: RmsNormVariant = { ...t, subgroups, wgSize };
        it(`rms_norm(src=${t.src},dst=${t.dst},subgroups=${subgroups},wg=${wgSize})`, async () => {
          if ((t.src === 'f16' || t.dst === 'f16') && !g.caps.hasF16) return;
          const kernel = await RmsNorm.create(g, variant);
          for (const { rows, cols } of shapes) {
            if (rows > 65_535 && wgSize !== 64) continue; // the 2-D grid path once per type is enough
            const eps = 1e-6;
            let x = randomArray(rows * cols, rows * 31 + cols, 3);
            const w = randomArray(cols, cols + 7, 1).map((v) => 1 + v * 0.5);
            let xBuf: GPUBuffer;
            if (t.src === 'f16') {
              const bits = toF16Array(x);
              x = fromF16Array(bits);
              xBuf = createBufferFrom(g, 'x', bits);
            } else xBuf = createBufferFrom(g, 'x', x);
            const outBytes = rows * cols * (t.dst === 'f16' ? 2 : 4);
            const out = createBuffer(g, 'out', outBytes + 64);
            g.queue.writeBuffer(out, 0, new Uint32Array(Math.ceil((outBytes + 64) / 4)).fill(SENTINEL));
            const d = kernel.bind({ x: xBuf, w: createBufferFrom(g, 'w', w), out }, { rows, cols, eps });
            await runDispatches(g, [d]);
            const raw = await readBuffer(g, out);
            const got =
              t.dst === 'f16'
                ? fromF16Array(new Uint16Array(raw, 0, rows * cols))
                : new Float32Array(raw, 0, rows * cols);
            const ref = rmsNormRef(x, w, rows, cols, eps);
            const rtol = t.dst === 'f16' ? 1e-3 : 2e-5;
            const r = compareClose(got, ref, { atol: 1e-6, rtol, name: `${kernel.name} (${rows}, ${cols})` });
            expect(r.ok, r.message).toBe(true);
            const guard = new Uint32Array(raw, Math.ceil(outBytes / 4) * 4);
            expect(
              [...guard].every((v) => v === SENTINEL),
              'write past the end of out',
            ).toBe(true);
          }
        });
      }
    }
  }

  it('rejects a weight shorter than cols, naming it', async () => {
    const kernel = await RmsNorm.create(g, { src: 'f32', dst: 'f32' });
    const buf = createBuffer(g, 'x', 64);
    expect(() =>
      kernel.bind(
        { x: buf, w: createBuffer(g, 'w', 8), out: buf },
        { rows: 1, cols: 16, eps: 1e-6 },
        'layers.3.input_layernorm',
      ),
    ).toThrow(/layers\.3\.input_layernorm: w has 8 bytes, expected at least 64/);
  });
});

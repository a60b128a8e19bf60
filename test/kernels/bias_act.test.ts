// bias_act WGSL vs the f64 CPU reference: every variant (bias / activation / residual) on odd shapes and the vision
// widths, then each GELU on a dense sweep of [−10, 10] to measure the approximation error.
// Tolerances: |gpu − ref| ≤ 2e-6 + 1e-5·|ref|. The erf approximation's |error| is ≤ 4.3e-7, so the exact GELU's
// absolute error is ≤ 0.5·|x|·4.3e-7 (≤ 2.2e-6 at |x| = 10; for negative x the product 0.5x(1 + erf) loses relative
// precision, as torch's f32 formula does); the tanh form is x / (1 + exp(−2u)) with f32 exp (measured ~5e-7).
import { describe, expect, it } from 'vitest';
import { type Activation, BiasAct } from '../../kernels/bias_act.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { biasActRef } from '../../kernels/reference/bias_act.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;
const TOL = { atol: 2e-6, rtol: 1e-5 };

const shapes = [
  { rows: 1, cols: 1 },
  { rows: 3, cols: 7 },
  { rows: 37, cols: 71 },
  { rows: 5, cols: 1152 },
  { rows: 2, cols: 4608 },
];
const acts: Activation[] = ['none', 'gelu_tanh', 'gelu_erf'];

describe.skipIf(!gpu)('bias_act', () => {
  const g = gpu!;
  for (const act of acts) {
    for (const bias of [false, true]) {
      for (const residual of [false, true]) {
        if (act === 'none' && !bias && !residual) continue;
        it(`bias_act(act=${act},bias=${bias},residual=${residual})`, async () => {
          const kernel = await BiasAct.create(g, { act, bias, residual });
          for (const { rows, cols } of shapes) {
            const n = rows * cols;
            const x = randomArray(n, n + 3, 4);
            const b = bias ? randomArray(cols, cols + 5, 1) : null;
            const h = residual ? randomArray(n, n + 9, 2) : null;
            const target = residual ? h! : x; // the buffer the kernel writes
            const outBuf = createBuffer(g, 'out', n * 4 + 64);
            g.queue.writeBuffer(outBuf, 0, new Uint32Array(n + 16).fill(SENTINEL));
            g.queue.writeBuffer(outBuf, 0, target);
            const d = kernel.bind(
              {
                x: residual ? createBufferFrom(g, 'x', x) : outBuf,
                b: b ? createBufferFrom(g, 'b', b) : undefined,
                h: residual ? outBuf : undefined,
              },
              { rows, cols },
            );
            await runDispatches(g, [d]);
            const raw = await readBuffer(g, outBuf);
            const ref = biasActRef(act, x, b, h, rows, cols);
            const r = compareClose(new Float32Array(raw, 0, n), ref, {
              ...TOL,
              name: `${kernel.name} (${rows}, ${cols})`,
            });
            expect(r.ok, r.message).toBe(true);
            expect(
              [...new Uint32Array(raw, n * 4)].every((v) => v === SENTINEL),
              'write past the end of the output',
            ).toBe(true);
          }
        });
      }
    }
  }

  for (const act of ['gelu_tanh', 'gelu_erf'] as const) {
    it(`${act} on a dense sweep of [-10, 10]`, async () => {
      const kernel = await BiasAct.create(g, { act, bias: false });
      const n = 200_001;
      const x = Float32Array.from({ length: n }, (_, i) => -10 + (20 * i) / (n - 1));
      const buf = createBufferFrom(g, 'x', x);
      await runDispatches(g, [kernel.bind({ x: buf }, { rows: 1, cols: n })]);
      const got = new Float32Array(await readBuffer(g, buf));
      const r = compareClose(got, biasActRef(act, x, null, null, 1, n), { ...TOL, name: `${act} sweep` });
      console.log(r.message);
      expect(r.ok, r.message).toBe(true);
    });
  }

  it('rejects a missing bias and a short one, naming the label', async () => {
    const kernel = await BiasAct.create(g, { act: 'gelu_tanh', bias: true });
    const x = createBuffer(g, 'x', 64);
    expect(() => kernel.bind({ x }, { rows: 2, cols: 8 }, 'blocks.0.mlp.fc1')).toThrow(
      /blocks\.0\.mlp\.fc1: needs a b buffer/,
    );
    expect(() => kernel.bind({ x, b: createBuffer(g, 'b', 16) }, { rows: 2, cols: 8 }, 'fc1')).toThrow(
      /fc1: b has 16 bytes, expected at least 32/,
    );
  });
});

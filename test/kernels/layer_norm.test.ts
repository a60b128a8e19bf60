// layer_norm WGSL vs the f64 CPU reference on odd widths and the vision tower's (64 tiny, 1152 30B, 4608 the
// DeepStack mergers' post-shuffle norm), both reduction paths, rows with a large common offset (a one-pass
// E[x²] − E[x]² variance would lose digits there).
// Tolerance: |gpu − ref| ≤ 1e-5 + 1e-5·|ref|: f32 sums over ≤ 4608 terms and one inverseSqrt (measured ≤ ~2e-6).
import { describe, expect, it } from 'vitest';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { LayerNorm } from '../../kernels/layer_norm.js';
import { layerNormRef } from '../../kernels/reference/layer_norm.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

const shapes = [
  { rows: 1, cols: 1, offset: 0 },
  { rows: 3, cols: 7, offset: 0 },
  { rows: 37, cols: 64, offset: 0 },
  { rows: 5, cols: 1152, offset: 20 },
  { rows: 3, cols: 4608, offset: -3 },
  { rows: 70_000, cols: 3, offset: 1 }, // more rows than one grid dimension holds
];

describe.skipIf(!gpu)('layer_norm', () => {
  const g = gpu!;
  const reductions = g?.caps.hasSubgroups ? [false, true] : [false];
  for (const subgroups of reductions) {
    for (const wgSize of [64, 256]) {
      it(`layer_norm(subgroups=${subgroups},wg=${wgSize})`, async () => {
        const kernel = await LayerNorm.create(g, { subgroups, wgSize });
        for (const { rows, cols, offset } of shapes) {
          if (rows > 65_535 && wgSize !== 64) continue; // the 2-D grid path once is enough
          const eps = 1e-6;
          const x = randomArray(rows * cols, rows * 31 + cols, 3).map((v) => v + offset);
          const w = randomArray(cols, cols + 7, 0.5).map((v) => 1 + v);
          const b = randomArray(cols, cols + 11, 0.3);
          const outBytes = rows * cols * 4;
          const out = createBuffer(g, 'out', outBytes + 64);
          g.queue.writeBuffer(out, 0, new Uint32Array((outBytes + 64) / 4).fill(SENTINEL));
          const d = kernel.bind(
            {
              x: createBufferFrom(g, 'x', x),
              w: createBufferFrom(g, 'w', w),
              b: createBufferFrom(g, 'b', b),
              out,
            },
            { rows, cols, eps },
          );
          await runDispatches(g, [d]);
          const raw = await readBuffer(g, out);
          const got = new Float32Array(raw, 0, rows * cols);
          const ref = layerNormRef(x, w, b, rows, cols, eps);
          const r = compareClose(got, ref, { atol: 1e-5, rtol: 1e-5, name: `${kernel.name} (${rows}, ${cols})` });
          expect(r.ok, r.message).toBe(true);
          if (cols >= 1152) console.log(r.message);
          const guard = new Uint32Array(raw, outBytes);
          expect(
            [...guard].every((v) => v === SENTINEL),
            'write past the end of out',
          ).toBe(true);
        }
      });
    }
  }

  it('rejects a bias shorter than cols, naming it', async () => {
    const kernel = await LayerNorm.create(g, {});
    const buf = createBuffer(g, 'x', 64);
    expect(() =>
      kernel.bind(
        { x: buf, w: buf, b: createBuffer(g, 'b', 8), out: buf },
        { rows: 1, cols: 16, eps: 1e-6 },
        'blocks.2.norm1',
      ),
    ).toThrow(/blocks\.2\.norm1: b has 8 bytes, expected at least 64/);
  });
});

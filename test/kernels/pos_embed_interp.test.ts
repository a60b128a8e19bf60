// pos_embed_interp WGSL vs the f64 CPU reference on odd shapes (an 8×8 table as the tiny model's, a 48×48 one's
// width 1152), random corner indices (repeats included) and bilinear-like weights summing to 1, guard after x.
// Tolerance: |gpu − ref| ≤ 1e-6 + 1e-6·|ref|: four f32 products summed and one add (measured ≤ ~2.4e-7).
import { describe, expect, it } from 'vitest';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { PosEmbedInterp } from '../../kernels/pos_embed_interp.js';
import { posEmbedInterpRef } from '../../kernels/reference/pos_embed_interp.js';
import { compareClose, randomArray, seededRandom } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

describe.skipIf(!gpu)('pos_embed_interp', () => {
  const g = gpu!;
  const cases = [
    { rows: 1, cols: 1, tableRows: 1 },
    { rows: 37, cols: 64, tableRows: 64 },
    { rows: 13, cols: 1152, tableRows: 2304 },
  ];
  for (const { rows, cols, tableRows } of cases) {
    it(`rows=${rows} cols=${cols} table=${tableRows}`, async () => {
      const kernel = await PosEmbedInterp.create(g);
      const rand = seededRandom(rows + cols);
      const x = randomArray(rows * cols, rows, 2);
      const table = randomArray(tableRows * cols, cols, 1);
      const index = Uint32Array.from({ length: rows * 4 }, () => Math.floor(rand() * tableRows));
      const weight = new Float32Array(rows * 4);
      for (let t = 0; t < rows; t++) {
        const [dh, dw] = [rand(), rand()];
        weight.set([(1 - dh) * (1 - dw), (1 - dh) * dw, dh * (1 - dw), dh * dw], 4 * t);
      }
      const bytes = rows * cols * 4;
      const xBuf = createBuffer(g, 'x', bytes + 64);
      g.queue.writeBuffer(xBuf, 0, new Uint32Array(bytes / 4 + 16).fill(SENTINEL));
      g.queue.writeBuffer(xBuf, 0, x);
      const d = kernel.bind(
        {
          x: xBuf,
          table: createBufferFrom(g, 'table', table),
          index: createBufferFrom(g, 'index', index),
          weight: createBufferFrom(g, 'weight', weight),
        },
        { rows, cols, tableRows },
      );
      await runDispatches(g, [d]);
      const raw = await readBuffer(g, xBuf);
      const ref = posEmbedInterpRef(x, table, index, weight, rows, cols);
      const r = compareClose(new Float32Array(raw, 0, rows * cols), ref, { atol: 1e-6, rtol: 1e-6, name: kernel.name });
      console.log(r.message);
      expect(r.ok, r.message).toBe(true);
      expect(
        [...new Uint32Array(raw, bytes)].every((v) => v === SENTINEL),
        'write past the end of x',
      ).toBe(true);
    });
  }

  it('rejects a table shorter than tableRows × cols, naming the label', async () => {
    const kernel = await PosEmbedInterp.create(g);
    const buf = createBuffer(g, 'buf', 4096);
    expect(() =>
      kernel.bind(
        { x: buf, table: createBuffer(g, 't', 64), index: buf, weight: buf },
        { rows: 2, cols: 8, tableRows: 4 },
        'vision/pos_embed',
      ),
    ).toThrow(/vision\/pos_embed: table has 64 bytes, expected at least 128/);
  });
});

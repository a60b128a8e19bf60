// vision_rope WGSL vs the f64 CPU reference: two images and a two-frame grid packed together (positions from
// visionRopePositions, merge-block order), head dims 32 (tiny), 72 (30B) and 8, plus random positions up to the
// table's end (large angles). v must come back untouched.
// Tolerance: |gpu − ref| ≤ 1e-6 + 1e-6·|ref|: the table's cos/sin are f32 roundings of the reference's (same f32
// angle), then two f32 products and a sum (measured ≤ ~5e-7 on inputs of magnitude 2).
import { describe, expect, it } from 'vitest';
import { createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { visionRopeRef } from '../../kernels/reference/vision_rope.js';
import { VisionRope, visionRopePositions } from '../../kernels/vision_rope.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();

describe('visionRopePositions', () => {
  it('lays patches out in 2x2 merge blocks, frames repeated, images concatenated', () => {
    const pos = visionRopePositions(
      [
        [1, 2, 4],
        [2, 2, 2],
      ],
      2,
    );
    const pairs = Array.from({ length: pos.length / 2 }, (_, i) => `${pos[2 * i]},${pos[2 * i + 1]}`);
    expect(pairs).toEqual([
      ...['0,0', '0,1', '1,0', '1,1', '0,2', '0,3', '1,2', '1,3'],
      ...['0,0', '0,1', '1,0', '1,1', '0,0', '0,1', '1,0', '1,1'],
    ]);
  });
  it('rejects a grid that is not a multiple of the merge size', () => {
    expect(() => visionRopePositions([[1, 3, 4]], 2)).toThrow(/grid 3x4 is not a multiple of 2/);
  });
});

describe.skipIf(!gpu)('vision_rope', () => {
  const g = gpu!;
  const cases = [
    { D: 32, heads: 2, random: false },
    { D: 72, heads: 3, random: false },
    { D: 8, heads: 1, random: true },
    { D: 72, heads: 2, random: true },
  ];
  for (const { D, heads, random } of cases) {
    it(`D=${D} heads=${heads} ${random ? 'random positions' : 'image grids'}`, async () => {
      const maxPosition = random ? 2048 : 64;
      const kernel = await VisionRope.create(g, { headDim: D, maxPosition });
      let positions = visionRopePositions(
        [
          [1, 6, 4],
          [1, 2, 6],
          [2, 2, 2],
        ],
        2,
      );
      const T = positions.length / 2;
      if (random) positions = Uint32Array.from(randomArray(2 * T, D, 1), (v) => Math.floor(Math.abs(v) * 2048));
      const n = T * 3 * heads * D;
      const qkv = randomArray(n, n, 2);
      const qkvBuf = createBufferFrom(g, 'qkv', qkv);
      const d = kernel.bind({ qkv: qkvBuf, positions: createBufferFrom(g, 'pos', positions) }, { tokens: T, heads });
      await runDispatches(g, [d]);
      const got = new Float32Array(await readBuffer(g, qkvBuf));
      const ref = visionRopeRef(qkv, positions, T, heads, D);
      const r = compareClose(got, ref, { atol: 1e-6, rtol: 1e-6, name: `${kernel.name} T=${T}` });
      console.log(r.message);
      expect(r.ok, r.message).toBe(true);
      for (let t = 0; t < T; t++) {
        const v = t * 3 * heads * D + 2 * heads * D;
        expect(got.subarray(v, v + heads * D)).toEqual(qkv.subarray(v, v + heads * D));
      }
      kernel.destroy();
    });
  }

  it('rejects short positions, naming the label', async () => {
    const kernel = await VisionRope.create(g, { headDim: 32, maxPosition: 8 });
    const qkv = createBufferFrom(g, 'qkv', new Float32Array(4 * 3 * 2 * 32));
    expect(() =>
      kernel.bind({ qkv, positions: createBufferFrom(g, 'p', new Uint32Array(6)) }, { tokens: 4, heads: 2 }, 'blk0'),
    ).toThrow(/blk0: positions has 24 bytes, expected at least 32/);
    kernel.destroy();
  });
});

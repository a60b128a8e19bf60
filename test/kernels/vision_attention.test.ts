// vision_attention WGSL vs the f64 CPU reference: packed segments of odd lengths (1, shorter and longer than one key
// tile of ~32, more than one query tile), head dims 32 (tiny) and 72 (30B: D/4 = 18, 6 threads per row), every
// query-tile size, and a peaky softmax (q, k scaled up) that makes the online rescaling matter. A guard region
// after out must stay untouched.
// Tolerance: |gpu − ref| ≤ 2e-6 + 1e-5·|ref|: f32 dot products over D and an f32 online softmax over ≤ 44 keys
// (measured ≤ ~5e-7 on v of magnitude 1).
import { describe, expect, it } from 'vitest';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { visionAttentionRef } from '../../kernels/reference/vision_attention.js';
import { VisionAttention, visionCuSeqlens } from '../../kernels/vision_attention.js';
import { compareClose, randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;

describe('visionCuSeqlens', () => {
  it('gives one segment per frame of each grid', () => {
    expect([
      ...visionCuSeqlens([
        [1, 4, 6],
        [2, 2, 4],
      ]),
    ]).toEqual([0, 24, 32, 40]);
  });
});

describe.skipIf(!gpu)('vision_attention', () => {
  const g = gpu!;
  const cases = [
    { D: 72, heads: 3, cu: [0, 1, 45, 50], blockQ: 8, scale: 3, unroll: false },
    { D: 32, heads: 1, cu: [0, 44, 45], blockQ: 16, scale: 3, unroll: false },
    // The hardware path (constant loop bounds) once, at D 32: lavapipe compiles the unrolled D 72 one in ~15 s.
    { D: 32, heads: 2, cu: [0, 20, 37], blockQ: undefined, scale: 3, unroll: true },
  ];
  for (const { D, heads, cu, blockQ, scale, unroll } of cases) {
    const what = `D=${D} heads=${heads} segments [${cu.join(', ')}] blockQ=${blockQ ?? 'auto'} scale=${scale}`;
    it(`${what} unroll=${unroll}`, async () => {
      const kernel = await VisionAttention.create(g, { headDim: D, blockQ, unroll });
      const T = cu[cu.length - 1];
      const row = 3 * heads * D;
      const qkv = randomArray(T * row, T + D, 1);
      for (let t = 0; t < T; t++) for (let i = 0; i < 2 * heads * D; i++) qkv[t * row + i] *= scale; // q and k only
      const outBytes = T * heads * D * 4;
      const out = createBuffer(g, 'out', outBytes + 64);
      g.queue.writeBuffer(out, 0, new Uint32Array(outBytes / 4 + 16).fill(SENTINEL));
      const d = kernel.bind(
        {
          qkv: createBufferFrom(g, 'qkv', qkv),
          cuSeqlens: createBufferFrom(g, 'cu', Uint32Array.from(cu)),
          out,
        },
        { tokens: T, heads, segments: cu.length - 1 },
      );
      await runDispatches(g, [d]);
      const raw = await readBuffer(g, out);
      const ref = visionAttentionRef(qkv, cu, T, heads, D);
      const r = compareClose(new Float32Array(raw, 0, T * heads * D), ref, {
        atol: 2e-6,
        rtol: 1e-5,
        name: kernel.name,
      });
      console.log(r.message);
      expect(r.ok, r.message).toBe(true);
      expect(
        [...new Uint32Array(raw, outBytes)].every((v) => v === SENTINEL),
        'write past the end of out',
      ).toBe(true);
    });
  }

  it('rejects a short cu_seqlens, naming the label', async () => {
    const kernel = await VisionAttention.create(g, { headDim: 32 });
    const buf = createBuffer(g, 'qkv', 4 * 3 * 2 * 32 * 4);
    expect(() =>
      kernel.bind(
        { qkv: buf, cuSeqlens: createBuffer(g, 'cu', 8), out: buf },
        { tokens: 4, heads: 2, segments: 2 },
        'blk1',
      ),
    ).toThrow(/blk1: cuSeqlens has 8 bytes, expected at least 12/);
  });
});

// The IR → GPU scale layouts (loader/gpu_layout.ts), checked on the CPU: an IR tensor and the GpuWeight-layout
// weight made from it must dequantize to the same values, the IR by loader/dequant.ts and the GPU layout by the
// kernels' own reference (kernels/reference/matvec.ts dequantRow). Both products are exact in f64 (≤ 31 significant
// bits), so the f32-rounded values must be equal, not close. Shapes cover equal and unequal segments, block grids
// that restart mid-block at a segment boundary, ragged last blocks, and one segment.
import { describe, expect, it } from 'vitest';
import { dequantRow, type HostWeight } from '../../kernels/reference/matvec.js';
import { dequantize } from '../../loader/dequant.js';
import { f32ArrayToBytes } from '../../loader/float_formats.js';
import { fp8Scales, nvfp4GlobalScales, segmentGroupRows } from '../../loader/gpu_layout.js';
import type { Fp8Scale, Fp8Tensor, IrTensor, Nvfp4Tensor } from '../../loader/ir.js';
import { seededRandom } from '../helpers/compare.js';

function randomBytes(n: number, seed: number, mask = 0xff): Uint8Array {
  const r = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256) & mask);
}

function randomScales(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => 0.01 + r());
}

function nvfp4(E: number, segmentRows: number[], K: number, seed: number): Nvfp4Tensor {
  const N = segmentRows.reduce((a, b) => a + b, 0);
  return {
    format: 'nvfp4',
    shape: [E, N, K],
    segmentRows,
    packed: randomBytes((E * N * K) / 2, seed),
    blockScale: randomBytes((E * N * K) / 16, seed + 1, 0x7e), // no E4M3 NaN (0x7f)
    globalScale: f32ArrayToBytes(randomScales(segmentRows.length * E, seed + 2)),
    inputScale: null,
    preQuantScale: null,
  };
}

function fp8(E: number, segmentRows: number[], K: number, scale: Fp8Scale, seed: number): Fp8Tensor {
  const N = segmentRows.reduce((a, b) => a + b, 0);
  const S = segmentRows.length;
  const numScales =
    scale.granularity === 'tensor'
      ? S * E
      : scale.granularity === 'channel'
        ? E * N
        : E *
          segmentRows.reduce((n, rows) => n + Math.ceil(rows / scale.blockRows), 0) *
          Math.ceil(K / scale.blockCols);
  return {
    format: 'fp8',
    shape: [E, N, K],
    segmentRows,
    data: randomBytes(E * N * K, seed, 0x7e),
    scale,
    scaleData: f32ArrayToBytes(randomScales(numScales, seed + 1)),
    inputScale: null,
  };
}

function hostWeightOf(t: IrTensor): HostWeight {
  const [E, N, K] = t.shape;
  const values = (b: Uint8Array) => new Float32Array(b.slice().buffer);
  switch (t.format) {
    case 'nvfp4': {
      const g = nvfp4GlobalScales(t, values(t.globalScale));
      return {
        format: 'nvfp4',
        numExperts: E,
        N,
        K,
        data: t.packed,
        blockScales: t.blockScale,
        globalScales: g.values,
        numRowGroups: g.numRowGroups,
      };
    }
    case 'fp8': {
      const s = fp8Scales(t, values(t.scaleData));
      return { format: 'fp8', numExperts: E, N, K, data: t.data, scales: s.values, scaleBlock: s.scaleBlock };
    }
    case 'bf16':
      throw new Error('bf16 needs no layout change');
  }
}

function expectSameWeights(t: IrTensor): HostWeight {
  const [E, N, K] = t.shape;
  const ir = dequantize(t);
  const host = hostWeightOf(t);
  for (let e = 0; e < E; e++)
    for (let n = 0; n < N; n++) {
      const row = dequantRow(host, e, n);
      for (let k = 0; k < K; k++) {
        const got = Math.fround(row[k]);
        const want = ir[(e * N + n) * K + k];
        if (got !== want) expect(got, `[${e}, ${n}, ${k}] of ${t.format} ${t.shape}`).toBe(want);
      }
    }
  return host;
}

describe('IR → GPU scale layouts', () => {
  it('segment groups: the gcd of the segments (and of the block rows)', () => {
    expect(segmentGroupRows([96, 96])).toBe(96);
    expect(segmentGroupRows([96])).toBe(96);
    expect(segmentGroupRows([3, 5])).toBe(1);
    expect(segmentGroupRows([96, 96], 128)).toBe(32);
  });

  it('nvfp4 global scales [S, E] → [E, row groups]', () => {
    expect(expectSameWeights(nvfp4(3, [5, 5], 32, 1)).numRowGroups).toBe(2); // fused gate/up
    expect(expectSameWeights(nvfp4(1, [7], 48, 2)).numRowGroups).toBe(1); // a plain linear
    expect(expectSameWeights(nvfp4(2, [3, 5], 16, 3)).numRowGroups).toBe(8); // unequal segments: one group per row
  });

  it('fp8 per-tensor and per-channel scales become row blocks', () => {
    expect(expectSameWeights(fp8(3, [6, 6], 32, { granularity: 'tensor' }, 4)).scaleBlock).toEqual([6, 32]);
    expect(expectSameWeights(fp8(2, [4, 6], 32, { granularity: 'tensor' }, 5)).scaleBlock).toEqual([2, 32]);
    expect(expectSameWeights(fp8(2, [9], 16, { granularity: 'tensor' }, 6)).scaleBlock).toEqual([9, 16]);
    expect(expectSameWeights(fp8(2, [7], 32, { granularity: 'channel' }, 7)).scaleBlock).toEqual([1, 32]);
  });

  it('fp8 block grids: kept when aligned, refined when a segment ends mid-block', () => {
    const block = (r: number, c: number): Fp8Scale => ({ granularity: 'block', blockRows: r, blockCols: c });
    expect(expectSameWeights(fp8(2, [8, 8], 48, block(4, 16), 8)).scaleBlock).toEqual([4, 16]);
    expect(expectSameWeights(fp8(2, [7], 40, block(4, 16), 9)).scaleBlock).toEqual([4, 16]); // ragged last blocks
    expect(expectSameWeights(fp8(3, [6, 6], 40, block(4, 16), 10)).scaleBlock).toEqual([2, 16]);
    expect(expectSameWeights(fp8(2, [5, 3], 32, block(4, 32), 11)).scaleBlock).toEqual([1, 32]);
  });
});

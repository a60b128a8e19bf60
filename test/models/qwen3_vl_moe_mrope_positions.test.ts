// M-RoPE positions vs a direct port of transformers' Qwen3-VL get_rope_index (which builds the whole prompt's
// position list piece by piece), the golden image prompt's positions, and the decode positions after the prompt.
import { describe, expect, it } from 'vitest';
import { type MropePosition, MropePositions, type MropeSpan } from '../../models/qwen3_vl_moe/mrope_positions.js';

/** get_rope_index for one prompt of `length` tokens: [positions, delta] (t, h, w per token). */
function hfRopeIndex(length: number, spans: readonly MropeSpan[]): [MropePosition[], number] {
  const pieces: MropePosition[][] = [];
  const nextStart = () => (pieces.length === 0 ? 0 : Math.max(...pieces[pieces.length - 1].flat()) + 1);
  let st = 0;
  for (const { tokenStart: ed, grid } of spans) {
    const [t, h, w] = grid;
    const textLen = ed - st;
    const stIdx = nextStart();
    pieces.push(Array.from({ length: textLen }, (_, k): MropePosition => [stIdx + k, stIdx + k, stIdx + k]));
    const image: MropePosition[] = [];
    for (let ti = 0; ti < t; ti++)
      for (let hi = 0; hi < h; hi++)
        for (let wi = 0; wi < w; wi++) image.push([ti + textLen + stIdx, hi + textLen + stIdx, wi + textLen + stIdx]);
    pieces.push(image);
    st = ed + t * h * w;
  }
  if (st < length) {
    const stIdx = nextStart();
    pieces.push(Array.from({ length: length - st }, (_, k): MropePosition => [stIdx + k, stIdx + k, stIdx + k]));
  }
  const positions = pieces.flat();
  return [positions, Math.max(...positions.flat()) + 1 - length];
}

describe('M-RoPE positions (Qwen3-VL get_rope_index)', () => {
  it('counts up for text: position = index, delta 0', () => {
    const m = new MropePositions([]);
    expect(m.ropeDelta).toBe(0);
    expect(m.range(0, 4)).toEqual([
      [0, 0, 0],
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
  });

  it('gives the golden image prompt its positions (2×3 merged grid at token 5)', () => {
    // Same positions as the model test's 'injects vision features' case: text 0..4; image t = 5, h = 5 + row,
    // w = 5 + col; text after resumes at 5 + max(2, 3) = 8.
    const length = 29;
    const want = Array.from({ length }, (_, i): MropePosition => {
      if (i < 5) return [i, i, i];
      if (i <= 10) return [5, 5 + Math.floor((i - 5) / 3), 5 + ((i - 5) % 3)];
      return [i - 3, i - 3, i - 3];
    });
    const m = new MropePositions([{ tokenStart: 5, grid: [1, 2, 3] }]);
    expect(m.range(0, length)).toEqual(want);
    expect(m.ropeDelta).toBe(-3);
    // The first decode token (index 29) goes to the prompt's max position + 1 = 25 + 1.
    expect(m.at(length)).toEqual([26, 26, 26]);
    // Any chunk computes the same positions as the whole prompt.
    expect(m.range(7, 13)).toEqual(want.slice(7, 13));
  });

  it('matches get_rope_index with two images, back to back and at the prompt end, and a 2-frame grid', () => {
    const cases: { length: number; spans: MropeSpan[] }[] = [
      {
        length: 60,
        spans: [
          { tokenStart: 3, grid: [1, 4, 2] },
          { tokenStart: 20, grid: [1, 3, 5] },
        ],
      },
      {
        length: 30,
        spans: [
          { tokenStart: 1, grid: [1, 2, 2] },
          { tokenStart: 5, grid: [1, 1, 3] },
          { tokenStart: 24, grid: [1, 2, 3] }, // ends the prompt
        ],
      },
      { length: 40, spans: [{ tokenStart: 0, grid: [2, 3, 4] }] },
      { length: 12, spans: [{ tokenStart: 2, grid: [1, 7, 1] }] },
    ];
    for (const { length, spans } of cases) {
      const [want, delta] = hfRopeIndex(length, spans);
      const m = new MropePositions(spans);
      expect(m.range(0, length)).toEqual(want);
      expect(m.ropeDelta).toBe(delta);
      // Decode: index + delta on every axis.
      for (const i of [length, length + 5]) expect(m.at(i)).toEqual([i + delta, i + delta, i + delta]);
    }
  });

  it('refuses overlapping or out-of-order images and bad grids', () => {
    expect(
      () =>
        new MropePositions([
          { tokenStart: 4, grid: [1, 2, 2] },
          { tokenStart: 6, grid: [1, 1, 1] },
        ]),
    ).toThrow(/image 1 starts at token 6, expected an integer ≥ 8/);
    expect(() => new MropePositions([{ tokenStart: 0, grid: [1, 0, 2] }])).toThrow(/image 0 has grid \[1,0,2\]/);
  });
});

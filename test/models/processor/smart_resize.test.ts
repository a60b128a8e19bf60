// smart_resize against values computed with transformers' own Python function (transformers 5, factor 32, the 30B
// preprocessor's 65536..16777216 pixels unless stated), including Python's half-to-even round().
import { describe, expect, it } from 'vitest';
import { ImageInputError } from '../../../models/qwen3_vl_moe/processor/errors.js';
import { pyRound, smartResize } from '../../../models/qwen3_vl_moe/processor/smart_resize.js';

const MIN = 65536;
const MAX = 16777216;

describe('smartResize', () => {
  it('pyRound ties go to even, like Python 3 round()', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999, 2.5001].map(pyRound)).toEqual([0, 2, 2, 4, 0, -2, 2, 3]);
  });

  // [width, height] -> [height, width], from Python: smart_resize(h, w, 32, 65536, 16777216)
  const cases: [number, number, number, number][] = [
    [1920, 1080, 1088, 1920],
    [1024, 768, 768, 1024],
    [448, 448, 448, 448],
    [1280, 720, 704, 1280],
    [100, 75, 224, 320], // below min pixels: scaled up, ceil to multiples of 32
    [10, 10, 256, 256], // tiny: transformers 5 no longer refuses it, it scales it up
    [8000, 6000, 3520, 4704], // above max pixels: scaled down, floor
    [333, 777, 768, 320],
    [200, 1, 32, 3648], // aspect exactly 200 is accepted
    [1, 200, 3648, 32],
    [3000, 31, 32, 3008],
  ];
  it.each(cases)('%ix%i -> h %i, w %i', (w, h, eh, ew) => {
    expect(smartResize(h, w, 32, MIN, MAX)).toEqual({ height: eh, width: ew });
  });

  it('uses round-half-to-even on the side lengths (48/32 = 1.5 -> 2, 80/32 = 2.5 -> 2)', () => {
    // Python: smart_resize(80, 48, 32, 1024, 1 << 30) == (64, 64); (48, 112) -> (64, 128); (176, 144) -> (192, 128)
    expect(smartResize(80, 48, 32, 1024, 2 ** 30)).toEqual({ height: 64, width: 64 });
    expect(smartResize(48, 112, 32, 1024, 2 ** 30)).toEqual({ height: 64, width: 128 });
    expect(smartResize(176, 144, 32, 1024, 2 ** 30)).toEqual({ height: 192, width: 128 });
  });

  it('matches the fixture preprocessor (min = max = 6144 pixels) and other caps', () => {
    expect(smartResize(75, 100, 32, 6144, 6144)).toEqual({ height: 64, width: 96 });
    // Python: smart_resize(1080, 1920, 32, 65536, 28*28*1280) == (736, 1312); (4000, 40, max 4096) == (640, 32)
    expect(smartResize(1080, 1920, 32, MIN, 28 * 28 * 1280)).toEqual({ height: 736, width: 1312 });
    expect(smartResize(4000, 40, 32, MIN, 32 * 32 * 4)).toEqual({ height: 640, width: 32 });
  });

  it('refuses an aspect ratio above 200, as transformers raises', () => {
    expect(() => smartResize(1, 201, 32, MIN, MAX)).toThrow(ImageInputError);
    expect(() => smartResize(1000, 4, 32, MIN, MAX)).toThrow(/aspect ratio of 250\.0; at most 200/);
    expect(() => smartResize(1000, 4, 32, MIN, MAX, 'messages[0].content[2]')).toThrow(
      /^messages\[0\]\.content\[2\]: image 4x1000 has an aspect ratio/,
    );
  });
});

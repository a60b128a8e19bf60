import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../core/float16.js';

describe('f16', () => {
  it('round-trips every non-NaN f16 bit pattern exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v)) continue;
      expect(f32ToF16Bits(v)).toBe(h);
    }
  });

  it('rounds to nearest even, into subnormals and to infinity', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and next: ties to even (1)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, odd neighbour below: rounds up
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds past max (65504) to inf
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // half the smallest subnormal: ties to even (0)
    expect(f32ToF16Bits(3 * 2 ** -26)).toBe(1); // 0.75 of the smallest subnormal rounds up
    expect(f16BitsToF32(1)).toBe(2 ** -24);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(Number.NaN)))).toBe(true);
  });
});

describe('bf16', () => {
  it('decodes by shifting into the top half of an f32', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc040)).toBe(-3);
    expect(bf16BitsToF32(0x7f80)).toBe(Number.POSITIVE_INFINITY);
  });

  it('rounds to nearest even like PyTorch', () => {
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie, even below
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, odd below: up
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above the tie
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN)))).toBe(true);
  });
});

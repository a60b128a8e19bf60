import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../core/errors.js';
import { expandPlaceholders } from '../../../models/common/expand_placeholders.js';

const pad = 9;

describe('expandPlaceholders', () => {
  it('repeats the k-th placeholder counts[k] times and leaves other ids alone', () => {
    expect(expandPlaceholders([1, pad, 2, pad, 3], pad, [3, 1])).toEqual([1, pad, pad, pad, 2, pad, 3]);
    expect(expandPlaceholders([1, 2], pad, [])).toEqual([1, 2]);
  });

  it('rejects a count that does not match the number of placeholders', () => {
    expect(() => expandPlaceholders([pad, 1, pad], pad, [4])).toThrow(
      /prompt has 2 placeholder token\(s\) 9, expected 1/,
    );
  });

  it('rejects counts below 1', () => {
    expect(() => expandPlaceholders([pad], pad, [0])).toThrow(ModelError);
    expect(() => expandPlaceholders([pad], pad, [2.5])).toThrow(/counts\[0\] is 2.5/);
  });
});

import { describe, expect, it } from 'vitest';
import { composeWgsl } from '../../kernels/gpu/compose.js';

describe('composeWgsl', () => {
  const src = [
    'a',
    '//#if F16',
    'b',
    '//#if !SUB',
    'c',
    '//#else',
    'd',
    '//#endif',
    '//#else',
    'e',
    '//#endif',
    '//#include tail',
  ].join('\n');

  it('keeps and drops lines by flags, nested, and pastes snippets', () => {
    expect(composeWgsl(src, { F16: true, SUB: false }, { tail: 'z' })).toBe('a\nb\nc\nz');
    expect(composeWgsl(src, { F16: true, SUB: true }, { tail: 'z' })).toBe('a\nb\nd\nz');
    expect(composeWgsl(src, { F16: false, SUB: true }, { tail: 'z' })).toBe('a\ne\nz');
  });

  it('names the line of a malformed directive or unknown flag', () => {
    expect(() => composeWgsl('//#if X\nx', { X: true }, {}, 'k')).toThrow(/k:1: \/\/#if without \/\/#endif/);
    expect(() => composeWgsl('//#if Y\n//#endif', {}, {}, 'k')).toThrow(/k:1: flag Y is not set/);
    expect(() => composeWgsl('//#endif', {}, {}, 'k')).toThrow(/k:1: \/\/#endif without/);
    expect(() => composeWgsl('//#include nope', {}, {}, 'k')).toThrow(/k:1: unknown snippet nope/);
  });
});

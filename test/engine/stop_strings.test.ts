import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from '../../engine/stop_strings.js';

/** Feeds the pieces one by one; returns the released deltas and the stop that matched (if any). */
function feed(matcher: StopStringMatcher, pieces: string[], canStop = true) {
  const deltas: string[] = [];
  for (const piece of pieces) {
    const step = matcher.push(piece, canStop);
    deltas.push(step.delta);
    if (step.stop !== null) return { deltas, stop: step.stop };
  }
  return { deltas, stop: null };
}

describe('StopStringMatcher', () => {
  it('finds a stop string split over pieces and releases only the text before it', () => {
    const m = new StopStringMatcher({ stop: ['STOP'] });
    const r = feed(m, ['abc S', 'T', 'OP and more']);
    expect(r.stop).toBe('STOP');
    expect(r.deltas).toEqual(['abc ', '', '']);
    expect(m.fullText).toBe('abc ');
  });

  it('holds back a tail that could still become a stop string, then releases it when it cannot', () => {
    const m = new StopStringMatcher({ stop: ['STOP'] });
    expect(feed(m, ['x ST', 'A', 'y']).deltas).toEqual(['x ', 'STA', 'y']);
    const end = new StopStringMatcher({ stop: ['STOP'] });
    expect(feed(end, ['x ST']).deltas).toEqual(['x ']);
    expect(end.flush()).toBe('ST');
  });

  it('keeps the stop string with include_stop_str_in_output, holding nothing back', () => {
    const m = new StopStringMatcher({ stop: ['STOP'], includeStopStrInOutput: true });
    const r = feed(m, ['a S', 'TO', 'P b']);
    expect(r.deltas).toEqual(['a S', 'TO', 'P']);
    expect(m.fullText).toBe('a STOP');
  });

  it('takes the match that ends first, ties to the earlier listed one', () => {
    expect(feed(new StopStringMatcher({ stop: ['cde', 'bc'] }), ['abcdef']).stop).toBe('bc');
    expect(feed(new StopStringMatcher({ stop: ['bc', 'abc'] }), ['abcdef']).stop).toBe('bc');
    expect(feed(new StopStringMatcher({ stop: ['abc', 'bc'] }), ['abcdef']).stop).toBe('abc');
  });

  it('lets no match end inside text pushed with canStop false (min_tokens), but finds later ones', () => {
    const m = new StopStringMatcher({ stop: ['ab'] });
    expect(feed(m, ['xab', 'a'], false).stop).toBeNull();
    const r = feed(m, ['b!']);
    expect(r.stop).toBe('ab');
    expect(m.fullText).toBe('xab'); // cut at the second "ab", which starts in the min_tokens text
  });

  it('refuses empty stop strings and pushes after a stop', () => {
    expect(() => new StopStringMatcher({ stop: ['a', ''] })).toThrow(/stop\[1\] is an empty string/);
    const m = new StopStringMatcher({ stop: ['a'] });
    m.push('a');
    expect(() => m.push('b')).toThrow(/after a stop string matched/);
  });
});

import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer, type TokenTextDecoder } from '../../engine/detokenizer.js';
import { loadTinyTokenizer } from '../models/common/fixture_tokenizer.js';

const tokenizer = loadTinyTokenizer();
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function feedOneByOne(detok: IncrementalDetokenizer, ids: readonly number[]): string[] {
  return ids.map((id) => detok.push(id));
}

// A seeded generator so a failing random case can be replayed.
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe.skipIf(!tokenizer)('IncrementalDetokenizer with the tiny byte-level BPE', () => {
  const tok = tokenizer!;

  it.each([
    ['emoji', 'Party 🎉 thumbs 👍🏽 family 👨‍👩‍👧!'],
    ['CJK', '你好世界，今天天气很好。'],
    ['mixed', 'naïve café — 東京 🗼 ok'],
  ])('never emits half a character (%s)', (_, text) => {
    const ids = tok.encode(text);
    const detok = new IncrementalDetokenizer(tok);
    const deltas = feedOneByOne(detok, ids);
    // The tiny vocab splits these characters into byte tokens: some steps must have held text back.
    expect(ids.length).toBeGreaterThan([...text].length / 2);
    expect(deltas.filter((d) => d === '').length).toBeGreaterThan(0);
    for (const delta of deltas) {
      expect(delta).not.toContain('\uFFFD');
      expect(delta).not.toMatch(loneSurrogate);
    }
    expect(deltas.join('')).toBe(text);
    expect(detok.flush()).toBe('');
    expect(detok.text).toBe(text);
  });

  it('gives the same text when ids come several at a time', () => {
    const text = 'Ünïcödé 🎉 and 中文 mixed in';
    const ids = tok.encode(text);
    const detok = new IncrementalDetokenizer(tok);
    const deltas = [detok.push(ids.slice(0, 3)), detok.push(ids.slice(3, 10)), detok.push(ids.slice(10))];
    expect(deltas.join('')).toBe(text);
    expect(detok.outputIds).toEqual(ids);
  });

  it('skips special tokens by default (vLLM) and keeps them when asked', () => {
    const ids = tok.encode('Sure.<|im_end|>\n<tool_call>x</tool_call>');
    expect(feedOneByOne(new IncrementalDetokenizer(tok), ids).join('')).toBe('Sure.\n<tool_call>x</tool_call>');
    expect(feedOneByOne(new IncrementalDetokenizer(tok, { skipSpecialTokens: false }), ids).join('')).toBe(
      'Sure.<|im_end|>\n<tool_call>x</tool_call>',
    );
  });

  it('uses the prompt as context without emitting it', () => {
    const promptIds = tok.encode('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(' 56 🎉');
    const detok = new IncrementalDetokenizer(tok, { promptIds });
    expect(feedOneByOne(detok, ids).join('')).toBe(' 56 🎉');
    expect(detok.outputIds).toEqual(ids);
  });

  it('flushes an unfinished character at the end as U+FFFD, so the deltas add up to decode(all ids)', () => {
    const ids = tok.encode('ok 🎉');
    const cut = ids.slice(0, -1); // the emoji's last byte never comes
    const detok = new IncrementalDetokenizer(tok);
    const streamed = feedOneByOne(detok, cut).join('');
    expect(streamed).toBe('ok ');
    const rest = detok.flush();
    expect(rest).toContain('\uFFFD');
    expect(streamed + rest).toBe(tok.decode(cut));
  });

  it('adds up to decode(all ids) for random token sequences (invalid UTF-8 included)', () => {
    const special = new Set(tok.specialIds);
    for (let seed = 1; seed <= 20; seed++) {
      const rand = lcg(seed);
      const ids: number[] = [];
      while (ids.length < 150) {
        const id = Math.floor(rand() * tok.vocabSize);
        if (!special.has(id)) ids.push(id);
      }
      const detok = new IncrementalDetokenizer(tok);
      const text = feedOneByOne(detok, ids).join('') + detok.flush();
      expect(text, `seed ${seed}`).toBe(tok.decode(ids, { skipSpecialTokens: true }));
    }
  });
});

// A SentencePiece-like decoder: '▁' is a space, and a decode drops the leading space of its first word. The
// window of context ids is what keeps the spaces between words.
const pieces = ['▁Hello', '▁world', '!', '▁again'];
const metaspace: TokenTextDecoder = {
  decode: (ids) =>
    ids
      .map((id) => pieces[id].replaceAll('▁', ' '))
      .join('')
      .replace(/^ /, ''),
};

describe('IncrementalDetokenizer with a decoder that strips a leading space', () => {
  it('keeps the spaces between words', () => {
    const detok = new IncrementalDetokenizer(metaspace);
    expect(feedOneByOne(detok, [0, 1, 2, 3])).toEqual(['Hello', ' world', '!', ' again']);
  });

  it('keeps the first output word apart from the prompt', () => {
    const detok = new IncrementalDetokenizer(metaspace, { promptIds: [0] });
    expect(feedOneByOne(detok, [1, 2])).toEqual([' world', '!']);
  });
});

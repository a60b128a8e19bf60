// A valid byte-level BPE tokenizer.json with exactly `vocab` ids, shaped like Qwen's (NFC, the Qwen2 split regex,
// ByteLevel pre-tokenizer and decoder): the 256 byte symbols, then merges that grow letter words (with and without
// the leading-space symbol Ġ) breadth-first, and Qwen's added tokens at their ids (special_tokens.ts). Every id
// decodes, and any text encodes (bytes are the base symbols), so serve can tokenize prompts and detokenize samples.
import { qwen3VlChatTemplate } from './chat_template.js';
import { addedTokensBase, qwenAddedTokens } from './special_tokens.js';

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 upwards. */
export function byteSymbols(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  // Ordered as the real vocabulary: '!' is id 0.
  return cs.map((c) => String.fromCodePoint(c));
}

const SPACE = 'Ġ'; // byte 0x20 as a byte-level symbol

/** The BPE vocabulary (symbol → id, ids skipping the added tokens' range) and its merges in rank order. */
function bpeModel(vocab: number): { vocab: Record<string, number>; merges: [string, string][] } {
  const base = addedTokensBase(vocab);
  const numAdded = qwenAddedTokens.length;
  const numBpe = vocab - numAdded;
  const ids: Record<string, number> = {};
  let next = 0;
  const add = (s: string) => {
    ids[s] = next;
    next = next + 1 === base ? base + numAdded : next + 1;
  };
  for (const s of byteSymbols()) add(s);
  const merges: [string, string][] = [];
  const letters = 'etaoinshrdlcumwfgypbvkjxqz'.split(''); // by English frequency, so short common words come first
  // Words of length 1 (Ġx), then every word of length n extended by one letter, until the vocabulary is full.
  let frontier: string[] = [];
  for (const c of letters) {
    if (merges.length + 256 >= numBpe) break;
    merges.push([SPACE, c]);
    add(SPACE + c);
    frontier.push(SPACE + c);
  }
  frontier.push(...letters);
  while (merges.length + 256 < numBpe) {
    const grown: string[] = [];
    for (const w of frontier) {
      for (const c of letters) {
        if (merges.length + 256 >= numBpe) break;
        merges.push([w, c]);
        add(w + c);
        grown.push(w + c);
      }
    }
    frontier = grown;
  }
  return { vocab: ids, merges };
}

export function tokenizerJson(vocab: number): Record<string, unknown> {
  const base = addedTokensBase(vocab);
  const model = bpeModel(vocab);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: qwenAddedTokens.map((t, i) => ({
      id: base + i,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: t.special,
    })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: model.vocab,
      merges: model.merges,
    },
  };
}

export function tokenizerConfigJson(vocab: number): Record<string, unknown> {
  const base = addedTokensBase(vocab);
  const decoder: Record<string, unknown> = {};
  qwenAddedTokens.forEach((t, i) => {
    decoder[String(base + i)] = {
      content: t.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: t.special,
    };
  });
  return {
    tokenizer_class: 'Qwen2Tokenizer',
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    model_max_length: 262144,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    split_special_tokens: false,
    added_tokens_decoder: decoder,
    chat_template: qwen3VlChatTemplate,
  };
}

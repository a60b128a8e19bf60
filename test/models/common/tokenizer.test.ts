import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../core/errors.js';
import { Tokenizer } from '../../../models/common/tokenizer.js';
import { findFixture, missingFixtureReason } from '../../helpers/fixtures.js';
import { goldenPromptIds, loadTinyTokenizer, tinyCheckpointDir } from './fixture_tokenizer.js';

const tokenizer = loadTinyTokenizer();
const golden = goldenPromptIds();
const textPrompt = '<|im_start|>user\nWhat is 7 times 8?<|im_end|>\n<|im_start|>assistant\n';

function errorOf(fn: () => unknown): ModelError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return err as ModelError;
  }
  throw new Error('expected a ModelError');
}

function tempCheckpoint(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dawnllm-tok-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe.skipIf(!tokenizer || !golden)('Tokenizer on the tiny Qwen3-VL-MoE checkpoint', () => {
  const tok = tokenizer!;

  it('encodes the rendered chat prompt to transformers golden ids', () => {
    expect(tok.encode(textPrompt, { addSpecialTokens: false })).toEqual(golden!.text);
    // Qwen's tokenizer has no post-processor: adding special tokens changes nothing.
    expect(tok.encode(textPrompt)).toEqual(golden!.text);
  });

  it('decodes the golden image prompt to its pads and text', () => {
    const pads = '<|image_pad|>'.repeat(6);
    expect(tok.decode(golden!.image)).toBe(
      `<|im_start|>user\n<|vision_start|>${pads}<|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('knows its special tokens, vocab size and bos/eos/pad', () => {
    const ids = Object.fromEntries(
      [
        '<|endoftext|>',
        '<|im_start|>',
        '<|im_end|>',
        '<|vision_start|>',
        '<|vision_end|>',
        '<|image_pad|>',
        '<tool_call>',
      ].map((t) => [t, tok.requireTokenId(t)]),
    );
    expect(ids).toEqual({
      '<|endoftext|>': 2030,
      '<|im_start|>': 2031,
      '<|im_end|>': 2032,
      '<|vision_start|>': 2039,
      '<|vision_end|>': 2040,
      '<|image_pad|>': 2042,
      '<tool_call>': 2044,
    });
    expect(tok.idToToken(2042)).toBe('<|image_pad|>');
    expect(tok.tokenToId('<|no_such_token|>')).toBeNull();
    expect(tok.vocabSize).toBe(2048);
    expect(tok.specialTokens).toEqual({ bos: null, eos: '<|im_end|>', pad: '<|endoftext|>', unk: null });
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId]).toEqual([null, 2032, 2030]);
    // <tool_call> is an added token but not special: skip_special_tokens keeps it, as in HF.
    expect(tok.isSpecialId(2032)).toBe(true);
    expect(tok.isSpecialId(2044)).toBe(false);
  });

  it('round-trips ASCII, accents, CJK, emoji and whitespace', () => {
    for (const text of [
      'Hello, world!',
      'naïve café',
      '你好世界，今天天气很好。',
      '🎉👍🏽 family: 👨‍👩‍👧',
      '  tabs\t\nand\n\n  spaces ',
      '',
    ]) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('skips special tokens on request and keeps non-special added tokens', () => {
    const ids = tok.encode('<|im_start|>assistant\n<tool_call>\n{}\n</tool_call><|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('assistant\n<tool_call>\n{}\n</tool_call>');
    expect(tok.decode(ids)).toBe('<|im_start|>assistant\n<tool_call>\n{}\n</tool_call><|im_end|>');
  });

  it('decodes ids it does not know (embedding padding rows) to nothing, and [] to ""', () => {
    expect(tok.decode([])).toBe('');
    expect(tok.decode([5000, 2047 + 1])).toBe('');
    expect(tok.decode([...tok.encode('ok'), 9999])).toBe('ok');
  });

  it('loads once per directory', () => {
    const dir = tinyCheckpointDir()!;
    expect(Tokenizer.load(dir)).toBe(tok);
    expect(Tokenizer.load(join(dir, '.'))).toBe(tok);
  });
});

describe('Tokenizer errors', () => {
  it('names the missing directory', () => {
    const err = errorOf(() => Tokenizer.load('/nonexistent/dawnllm-model'));
    expect(err.code).toBe('DAWN_ERR_MODEL_FILE_MISSING');
    expect(err.message).toContain('/nonexistent/dawnllm-model');
  });

  it('names tokenizer.json when it is missing', () => {
    const dir = tempCheckpoint({ 'tokenizer_config.json': '{}' });
    const err = errorOf(() => Tokenizer.load(dir));
    expect(err.code).toBe('DAWN_ERR_MODEL_FILE_MISSING');
    expect(err.message).toContain(join(dir, 'tokenizer.json'));
  });

  it('says which file is not JSON', () => {
    const dir = tempCheckpoint({ 'tokenizer.json': '{"model": ', 'tokenizer_config.json': '{}' });
    const err = errorOf(() => Tokenizer.load(dir));
    expect(err.code).toBe('DAWN_ERR_MODEL_FILE_INVALID');
    expect(err.message).toMatch(/tokenizer\.json is not valid JSON/);
  });

  const tinyDir = findFixture('qwen3vlmoe-tiny/bf16');
  it.skipIf(!tinyDir)('rejects an eos_token that tokenizer.json lacks, naming the field', () => {
    const dir = tempCheckpoint({ 'tokenizer_config.json': JSON.stringify({ eos_token: { content: '</s>' } }) });
    copyFileSync(join(tinyDir!, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const err = errorOf(() => Tokenizer.load(dir));
    expect(err.message).toContain('eos_token "</s>"');
    expect(err.message).toContain('tokenizer_config.json');
  });

  it.skipIf(!tinyDir)('requireTokenId names the missing token', () => {
    const err = errorOf(() => Tokenizer.load(tinyDir!).requireTokenId('<|audio_pad|>'));
    expect(err.code).toBe('DAWN_ERR_MODEL_TOKEN_MISSING');
    expect(err.message).toContain('<|audio_pad|>');
  });
});

const arithDir = findFixture('qwen3vlmoe-arith/bf16');
if (!arithDir) console.log(`skipping: ${missingFixtureReason('qwen3vlmoe-arith/bf16')}`);

describe.skipIf(!arithDir || !golden)('Tokenizer on qwen3vlmoe-arith (same tokenizer family)', () => {
  it('encodes the chat prompt to the same golden ids', () => {
    expect(Tokenizer.load(arithDir!).encode(textPrompt, { addSpecialTokens: false })).toEqual(golden!.text);
  });
});

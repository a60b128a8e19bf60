// The tiny Qwen3-VL-MoE fixture's tokenizer (a 2048-token Qwen2-style byte-level BPE with Qwen's special tokens),
// shared by the tokenizer, chat-template and engine text tests. Null, with the reason printed, when it is absent.
import { readFileSync } from 'node:fs';
import { findFixture, missingFixtureReason } from '../../helpers/fixtures.js';
import { Tokenizer } from '../../../models/common/tokenizer.js';

export const tinyCheckpoint = 'qwen3vlmoe-tiny/bf16';

export function tinyCheckpointDir(): string | null {
  const dir = findFixture(tinyCheckpoint);
  if (!dir) console.log(`skipping: ${missingFixtureReason(tinyCheckpoint)}`);
  return dir;
}

export function loadTinyTokenizer(): Tokenizer | null {
  const dir = tinyCheckpointDir();
  return dir ? Tokenizer.load(dir) : null;
}

interface GoldenCase {
  prompt_ids: number[];
}

/** The prompt ids transformers produced for the golden `text` and `image` cases, or null without the fixture. */
export function goldenPromptIds(): { text: number[]; image: number[] } | null {
  const path = findFixture('qwen3vlmoe-tiny/golden/cases.json');
  if (!path) {
    console.log(`skipping: ${missingFixtureReason('qwen3vlmoe-tiny/golden/cases.json')}`);
    return null;
  }
  const cases = JSON.parse(readFileSync(path, 'utf8')).checkpoints.bf16.cases as Record<string, GoldenCase>;
  return { text: cases.text.prompt_ids, image: cases.image.prompt_ids };
}

// A scripted stand-in model for the benchmark's tests: the fake runner answers the last user turn's arithmetic
// (and names the right option of a multiple-choice one) through the bundled model's tokenizer and chat template.
import { FakeModelRunner } from '../../engine/fake_model_runner.js';
import { Tokenizer } from '../../models/common/tokenizer.js';
import { defaultModelDir } from '../../models/default_model.js';
import type { RunnerFactory } from '../../server/runner_factory.js';

export const modelDir = defaultModelDir();
export const tokenizer = Tokenizer.load(modelDir);
const enc = (s: string) => tokenizer.encode(s, { addSpecialTokens: false });
const assistantHeader = enc('<|im_start|>assistant\n');
const imEnd = tokenizer.requireTokenId('<|im_end|>');

/** Answers the last user turn's arithmetic (and names the right option of a multiple-choice one). */
export function oracle(wrongTimes: boolean) {
  return (context: readonly number[]): number => {
    let at = -1;
    for (let i = context.length - assistantHeader.length; i >= 0 && at < 0; i--)
      if (assistantHeader.every((t, j) => context[i + j] === t)) at = i;
    const question = tokenizer.decode(context.slice(0, at));
    const m = /What is (\d+) (plus|minus|times) (\d+)(?: (plus|minus) (\d+))?\?([^]*)$/.exec(question)!;
    const apply = (a: number, op: string, b: number) => (op === 'plus' ? a + b : op === 'minus' ? a - b : a * b);
    let value = apply(Number(m[1]), m[2], Number(m[3]));
    if (m[4] !== undefined) value = apply(value, m[4], Number(m[5]));
    if (wrongTimes && m[2] === 'times') value += 1;
    const option = new RegExp(`\\n([A-D])\\. ${value}\\n`).exec(m[6]);
    const answer = m[6].includes('Answer with the letter') ? (option?.[1] ?? 'A') : String(value);
    const ids = [...enc(answer), imEnd];
    return ids[context.length - at - assistantHeader.length] ?? imEnd;
  };
}

export const factory =
  (wrongTimes: boolean): RunnerFactory =>
  async () => ({
    runner: new FakeModelRunner({ numKvBlocks: 512, vocabSize: tokenizer.vocabSize, script: oracle(wrongTimes) }),
    format: 'fake',
    loadSummary: [],
  });

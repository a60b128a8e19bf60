// Scores one checkpoint on one task. Generative: greedy decoding of the chat prompt, then the extraction rule.
// Multiple choice by log-likelihood (lm-eval's acc): the summed logprob of each choice's continuation (its letter)
// after the chat prompt, highest wins; by generated letter: greedy decoding, the first standalone letter.
// Requests go to the backend concurrently (the engine batches them); results keep item order.
import type { Backend, PositionLogprobs } from './backend.js';
import { type ExtractRule, extractLetter, isCorrect } from './extract.js';
import type { GenItem, McItem } from './tasks.js';

export type McMode = 'loglik' | 'letter';

export interface GenResult {
  readonly task: string;
  readonly correct: boolean;
  readonly output: string;
  readonly gold: string;
}

export interface McResult {
  readonly task: string;
  readonly correct: boolean;
  /** Index of the picked choice (−1: no letter found in the generated text). */
  readonly pick: number;
  readonly answer: number;
  /** loglik: each choice's continuation logprob; letter: empty. */
  readonly scores: readonly number[];
  /** loglik: best score − second best (small = the pick hangs on numerical noise); letter: null. */
  readonly gap: number | null;
  /** letter: the generated text. */
  readonly output?: string;
}

export type ItemResult = GenResult | McResult;

/** Runs fn over items with at most `concurrency` in flight, reporting each completion; results in item order. */
export async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  onDone: () => void = () => {},
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
      onDone();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

export async function scoreGen(
  backend: Backend,
  item: GenItem,
  rule: ExtractRule,
  maxTokens: number,
): Promise<GenResult> {
  const output = await backend.generate(await backend.chatPromptIds(item.prompt), maxTokens);
  return { task: item.task, correct: isCorrect(output, item.gold, rule), output, gold: item.gold };
}

export async function scoreMcLoglik(backend: Backend, item: McItem): Promise<McResult> {
  const prompt = await backend.chatPromptIds(item.prompt);
  const scores = await Promise.all(
    item.letters.map(async (letter) => {
      const cont = await backend.encode(letter);
      const rows = await backend.promptLogprobs([...prompt, ...cont], 1);
      return continuationLogprob(rows, cont.length);
    }),
  );
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const pick = order[0];
  const gap = scores.length > 1 ? scores[order[0]] - scores[order[1]] : null;
  return { task: item.task, correct: pick === item.answerIndex, pick, answer: item.answerIndex, scores, gap };
}

/** The logprob of the last `n` tokens (the continuation) from a sequence's prompt logprobs. */
export function continuationLogprob(rows: readonly PositionLogprobs[], n: number): number {
  let sum = 0;
  for (let i = rows.length - n; i < rows.length; i++) sum += rows[i].logprob;
  return sum;
}

export async function scoreMcLetter(backend: Backend, item: McItem, maxTokens: number): Promise<McResult> {
  const output = await backend.generate(await backend.chatPromptIds(item.prompt), maxTokens);
  const pick = extractLetter(output, item.letters);
  return {
    task: item.task,
    correct: pick === item.answerIndex,
    pick,
    answer: item.answerIndex,
    scores: [],
    gap: null,
    output,
  };
}

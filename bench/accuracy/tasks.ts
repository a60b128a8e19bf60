// Task files in the common JSONL layouts, one item per line:
// - generative (GSM8K-style): {"question", "answer"} — a GSM8K answer's gold is the text after "#### " (commas
//   dropped); an optional "task" field splits the file into subtasks (arith-gen: add2, sub2, mul, add3);
// - multiple choice (MMLU-style): {"question", "choices", "answer"} — answer is a letter, a 0-based index or the
//   text of a choice. When the choices are the letters themselves (arith-mc), the question already lists the
//   options; otherwise they are listed under the question as "A. …" lines, as in arith-mc.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { DawnError } from '../../core/errors.js';

export interface GenItem {
  readonly kind: 'gen';
  /** Subtask (the item's "task" field, else the file's name). */
  readonly task: string;
  /** The user message sent through the chat template. */
  readonly prompt: string;
  /** The gold answer, already extracted (GSM8K: the number after ####). */
  readonly gold: string;
  /** True when the gold came from a "#### N" answer (such tasks default to last-number extraction). */
  readonly isGsm8k: boolean;
}

export interface McItem {
  readonly kind: 'mc';
  readonly task: string;
  readonly prompt: string;
  /** The answer letters, one per choice ("A", "B", …). */
  readonly letters: readonly string[];
  /** The choice texts (the letters again when the file gives only letters). */
  readonly choiceTexts: readonly string[];
  readonly answerIndex: number;
}

export type TaskItem = GenItem | McItem;

export interface TaskFile {
  /** The file's name without extension. */
  readonly name: string;
  readonly kind: 'gen' | 'mc';
  readonly items: readonly TaskItem[];
}

export class TaskFileError extends DawnError {
  constructor(message: string) {
    super('DAWN_ERR_BENCH_TASK_FILE', message, {
      hint: 'each line must be JSON with question + answer (GSM8K) or question + choices + answer (MMLU); see docs/ACCURACY.md',
    });
  }
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function loadTaskFile(path: string): TaskFile {
  const name = basename(path, extname(path));
  return parseTaskJsonl(readFileSync(path, 'utf8'), name, path);
}

export function parseTaskJsonl(text: string, name: string, where = name): TaskFile {
  const items: TaskItem[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new TaskFileError(`${where}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    items.push(parseItem(row, name, `${where}:${i + 1}`));
  });
  if (items.length === 0) throw new TaskFileError(`${where}: no items`);
  const kind = items[0].kind;
  const other = items.findIndex((it) => it.kind !== kind);
  if (other >= 0) throw new TaskFileError(`${where}: item ${other + 1} is ${items[other].kind}, the first is ${kind}`);
  return { name, kind, items };
}

function parseItem(row: unknown, fileName: string, where: string): TaskItem {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw new TaskFileError(`${where}: expected an object, got ${JSON.stringify(row)}`);
  const r = row as Record<string, unknown>;
  if (typeof r.question !== 'string') throw new TaskFileError(`${where}: "question" must be a string`);
  const task = typeof r.task === 'string' ? r.task : fileName;
  if (r.choices !== undefined) return parseMc(r, task, r.question, where);
  if (typeof r.answer !== 'string' && typeof r.answer !== 'number')
    throw new TaskFileError(`${where}: "answer" must be a string or a number`);
  const answer = String(r.answer);
  const hash = answer.lastIndexOf('####');
  const isGsm8k = hash >= 0;
  const gold = isGsm8k
    ? answer
        .slice(hash + 4)
        .trim()
        .replaceAll(',', '')
    : answer.trim();
  return { kind: 'gen', task, prompt: r.question, gold, isGsm8k };
}

function parseMc(r: Record<string, unknown>, task: string, question: string, where: string): McItem {
  const choices = r.choices;
  if (!Array.isArray(choices) || choices.length < 2 || choices.some((c) => typeof c !== 'string'))
    throw new TaskFileError(`${where}: "choices" must be an array of at least 2 strings`);
  if (choices.length > LETTERS.length) throw new TaskFileError(`${where}: more than ${LETTERS.length} choices`);
  const texts = choices as string[];
  const isLetters = texts.every((c, i) => c === LETTERS[i]);
  const letters = isLetters ? texts : [...LETTERS.slice(0, texts.length)];
  const answerIndex = answerIndexOf(r.answer, letters, texts);
  if (answerIndex < 0)
    throw new TaskFileError(
      `${where}: "answer" ${JSON.stringify(r.answer)} is not a letter ${letters[0]}–${letters.at(-1)}, an index below ${texts.length} or a choice`,
    );
  const prompt = isLetters ? question : formatMcPrompt(question, texts);
  return { kind: 'mc', task, prompt, letters, choiceTexts: texts, answerIndex };
}

/** The question with its options listed, in arith-mc's own form. */
export function formatMcPrompt(question: string, choices: readonly string[]): string {
  const lines = choices.map((c, i) => `${LETTERS[i]}. ${c}`);
  return `${question}\n${lines.join('\n')}\nAnswer with the letter.`;
}

function answerIndexOf(answer: unknown, letters: readonly string[], texts: readonly string[]): number {
  if (typeof answer === 'number') return Number.isInteger(answer) && answer >= 0 && answer < texts.length ? answer : -1;
  if (typeof answer !== 'string') return -1;
  const byLetter = letters.indexOf(answer.trim());
  return byLetter >= 0 ? byLetter : texts.indexOf(answer);
}

// Answer extraction for generative tasks: what part of the model's text is compared with the gold answer.
// exact: the whole text, stripped (transformers' reference scoring); last-number: the last number in the text
// (commas and a trailing period dropped, so "1,234." matches 1234; GSM8K's usual rule); regex: the first capture
// group (or the whole match) of a user pattern.
import { DawnError } from '../../core/errors.js';

export type ExtractRule = { kind: 'exact' } | { kind: 'last-number' } | { kind: 'regex'; pattern: RegExp };

export function parseExtractRule(text: string): ExtractRule {
  if (text === 'exact' || text === 'last-number') return { kind: text };
  if (text.startsWith('regex:')) {
    try {
      return { kind: 'regex', pattern: new RegExp(text.slice('regex:'.length)) };
    } catch (err) {
      throw new DawnError('DAWN_ERR_CLI_USAGE', `--extract: bad regex: ${(err as Error).message}`);
    }
  }
  throw new DawnError('DAWN_ERR_CLI_USAGE', `--extract must be exact, last-number or regex:<pattern>, got "${text}"`);
}

export function describeRule(rule: ExtractRule): string {
  return rule.kind === 'regex' ? `regex:${rule.pattern.source}` : rule.kind;
}

/** The answer found in `text`, or null when the rule finds none. */
export function extractAnswer(text: string, rule: ExtractRule): string | null {
  switch (rule.kind) {
    case 'exact':
      return text.trim();
    case 'last-number': {
      const found = text.match(/-?[\d,]*\.?\d+/g);
      return found === null ? null : normalizeNumber(found.at(-1)!);
    }
    case 'regex': {
      const m = rule.pattern.exec(text);
      return m === null ? null : (m[1] ?? m[0]).trim();
    }
  }
}

/** Scores one prediction: the extracted answer equals the gold (numbers compared as numbers under last-number). */
export function isCorrect(text: string, gold: string, rule: ExtractRule): boolean {
  const got = extractAnswer(text, rule);
  if (got === null) return false;
  if (rule.kind !== 'last-number') return got === gold.trim();
  const want = normalizeNumber(gold.trim());
  return got === want || (Number.isFinite(Number(got)) && Number(got) === Number(want));
}

function normalizeNumber(s: string): string {
  return s.replaceAll(',', '').replace(/\.$/, '');
}

/** The letter a generated answer names: the first letter of `letters` standing alone at the start ("B", "B.", "(B)"). */
export function extractLetter(text: string, letters: readonly string[]): number {
  const m = /^\W*([A-Za-z])(?![A-Za-z])/.exec(text.trim());
  return m === null ? -1 : letters.indexOf(m[1].toUpperCase());
}

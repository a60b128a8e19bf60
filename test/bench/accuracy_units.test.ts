import { describe, expect, it } from 'vitest';
import type { PositionLogprobs } from '../../bench/accuracy/backend.js';
import { driftStats, perplexity, positionKl } from '../../bench/accuracy/drift.js';
import { continuationLogprob, mapPool } from '../../bench/accuracy/evaluate.js';
import { extractAnswer, extractLetter, isCorrect, parseExtractRule } from '../../bench/accuracy/extract.js';
import { renderBar } from '../../bench/accuracy/progress.js';
import { pairedBootstrap, sampleIndices, seededRandom } from '../../bench/accuracy/stats.js';
import { formatMcPrompt, parseTaskJsonl, TaskFileError } from '../../bench/accuracy/tasks.js';

describe('task files', () => {
  it('reads arith-gen lines with their subtask', () => {
    const f = parseTaskJsonl('{"task": "mul", "question": "What is 7 times 8?", "answer": "56"}\n\n', 'arith-gen');
    expect(f.kind).toBe('gen');
    expect(f.items).toEqual([{ kind: 'gen', task: 'mul', prompt: 'What is 7 times 8?', gold: '56', isGsm8k: false }]);
  });

  it('takes the number after #### as the GSM8K gold, commas dropped', () => {
    const f = parseTaskJsonl('{"question": "q", "answer": "Step 1\\nStep 2\\n#### 1,234"}', 'gsm8k');
    expect(f.items[0]).toMatchObject({ task: 'gsm8k', gold: '1234', isGsm8k: true });
  });

  it('reads arith-mc (letters as choices, options in the question)', () => {
    const line = JSON.stringify({
      task: 'mc-add2',
      question: 'What is 37 plus 77?\nA. 114\nB. 111\nAnswer with the letter.',
      choices: ['A', 'B'],
      answer: 'B',
    });
    const item = parseTaskJsonl(line, 'arith-mc').items[0];
    expect(item).toMatchObject({ kind: 'mc', letters: ['A', 'B'], answerIndex: 1 });
    expect(item.prompt).toBe('What is 37 plus 77?\nA. 114\nB. 111\nAnswer with the letter.');
  });

  it('reads MMLU (choice texts, integer answer) and lists the options under the question', () => {
    const line = JSON.stringify({ question: 'Capital of France?', choices: ['Rome', 'Paris', 'Oslo'], answer: 1 });
    const item = parseTaskJsonl(line, 'mmlu').items[0];
    expect(item).toMatchObject({
      kind: 'mc',
      letters: ['A', 'B', 'C'],
      answerIndex: 1,
      choiceTexts: ['Rome', 'Paris', 'Oslo'],
    });
    expect(item.prompt).toBe(formatMcPrompt('Capital of France?', ['Rome', 'Paris', 'Oslo']));
    expect(item.prompt).toBe('Capital of France?\nA. Rome\nB. Paris\nC. Oslo\nAnswer with the letter.');
    const byText = parseTaskJsonl(JSON.stringify({ question: 'q', choices: ['x', 'y'], answer: 'y' }), 'm');
    expect((byText.items[0] as { answerIndex: number }).answerIndex).toBe(1);
  });

  it('names the line of a bad item', () => {
    expect(() => parseTaskJsonl('{"question": "q", "answer": "1"}\n{oops', 'f')).toThrow(/f:2: not JSON/);
    expect(() => parseTaskJsonl('{"question": "q", "choices": ["a", "b"], "answer": "E"}', 'f')).toThrow(TaskFileError);
    expect(() =>
      parseTaskJsonl('{"question": "q", "answer": "1"}\n{"question": "q", "choices": ["a","b"], "answer": 0}', 'f'),
    ).toThrow(/item 2 is mc/);
    expect(() => parseTaskJsonl('\n', 'f')).toThrow(/no items/);
  });
});

describe('answer extraction', () => {
  it('exact strips whitespace only', () => {
    const exact = parseExtractRule('exact');
    expect(isCorrect(' 56\n', '56', exact)).toBe(true);
    expect(isCorrect('56.', '56', exact)).toBe(false);
    expect(isCorrect('The answer is 56', '56', exact)).toBe(false);
  });

  it('last-number takes the last number, commas and a final period dropped', () => {
    const rule = parseExtractRule('last-number');
    expect(extractAnswer('3 apples, then 1,234.', rule)).toBe('1234');
    expect(isCorrect('so 12 + 6 = 18.', '18', rule)).toBe(true);
    expect(isCorrect('-5', '-5', rule)).toBe(true);
    expect(isCorrect('2.50', '2.5', rule)).toBe(true);
    expect(isCorrect('no digits', '3', rule)).toBe(false);
  });

  it('regex takes the first group', () => {
    const rule = parseExtractRule('regex:answer is (\\d+)');
    expect(extractAnswer('the answer is 42, not 7', rule)).toBe('42');
    expect(isCorrect('nothing', '42', rule)).toBe(false);
    expect(() => parseExtractRule('regex:(')).toThrow(/bad regex/);
    expect(() => parseExtractRule('fuzzy')).toThrow(/exact, last-number or regex/);
  });

  it('finds a standalone letter at the start', () => {
    const L = ['A', 'B', 'C', 'D'];
    expect(extractLetter('B', L)).toBe(1);
    expect(extractLetter(' (c) because', L)).toBe(2);
    expect(extractLetter('D.', L)).toBe(3);
    expect(extractLetter('Because', L)).toBe(-1);
    expect(extractLetter('E', L)).toBe(-1);
  });
});

describe('sampling and bootstrap', () => {
  it('draws the same sorted subset for a seed, all items without a limit', () => {
    const a = sampleIndices(100, 10, 7);
    expect(a).toEqual(sampleIndices(100, 10, 7));
    expect(a).not.toEqual(sampleIndices(100, 10, 8));
    expect(new Set(a).size).toBe(10);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(sampleIndices(5, null, 1)).toEqual([0, 1, 2, 3, 4]);
    expect(sampleIndices(5, 9, 1)).toEqual([0, 1, 2, 3, 4]);
  });

  it('seeded random is uniform enough', () => {
    const r = seededRandom(3);
    let s = 0;
    for (let i = 0; i < 10000; i++) s += r();
    expect(s / 10000).toBeGreaterThan(0.48);
    expect(s / 10000).toBeLessThan(0.52);
  });

  it('gives intervals around the accuracy, and a zero-width Δ when both sides agree item by item', () => {
    const b = Array.from({ length: 200 }, (_, i) => i % 4 !== 0); // 75 %
    const same = pairedBootstrap(b, b, { seed: 1 });
    expect(same.delta).toEqual({ lo: 0, hi: 0 });
    expect(same.baseline.lo).toBeLessThan(0.75);
    expect(same.baseline.hi).toBeGreaterThan(0.75);
    // Binomial standard error at n = 200, p = .75 is 3.1 pp: a 95 % interval is about ±6 pp.
    expect(same.baseline.hi - same.baseline.lo).toBeGreaterThan(0.08);
    expect(same.baseline.hi - same.baseline.lo).toBeLessThan(0.16);
    const c = b.map((x, i) => (i < 20 ? false : x)); // loses 15 items: −7.5 pp
    const diff = pairedBootstrap(b, c, { seed: 1 });
    expect(diff.delta.hi).toBeLessThan(0);
    expect(diff.delta.lo).toBeLessThan(-0.075);
    expect(diff.delta.hi).toBeGreaterThan(-0.075);
  });
});

const row = (entries: [string, number][], logprob = entries[0][1]): PositionLogprobs => ({
  logprob,
  top: new Map(entries),
});

describe('drift and perplexity', () => {
  it('is zero for identical distributions', () => {
    const p = row([
      ['1', Math.log(0.7)],
      ['2', Math.log(0.2)],
    ]);
    expect(positionKl(p, p)).toBeCloseTo(0, 12);
    const s = driftStats([[p, p]], [[p, p]]);
    expect(s).toMatchObject({ positions: 2, top1Agreement: 1, maxAbsDeltaLogprob: 0 });
  });

  it('matches the closed-form KL over the listed tokens and the rest bucket', () => {
    const p = row([
      ['1', Math.log(0.7)],
      ['2', Math.log(0.2)],
    ]);
    const q = row([
      ['2', Math.log(0.5)],
      ['1', Math.log(0.4)],
    ]);
    const want = 0.7 * Math.log(0.7 / 0.4) + 0.2 * Math.log(0.2 / 0.5) + 0.1 * Math.log(0.1 / 0.1);
    expect(positionKl(p, q)).toBeCloseTo(want, 12);
    const s = driftStats([[p]], [[q]]);
    expect(s.top1Agreement).toBe(0);
    expect(s.maxAbsDeltaLogprob).toBeCloseTo(Math.log(0.5 / 0.2), 12); // token 2: the larger of the two shifts
  });

  it('bounds a token missing from the candidate top-k by its smallest listed logprob', () => {
    const p = row([
      ['1', Math.log(0.5)],
      ['3', Math.log(0.5)],
    ]);
    const q = row([
      ['1', Math.log(0.9)],
      ['2', Math.log(0.05)],
    ]);
    const want = 0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.05);
    expect(positionKl(p, q)).toBeCloseTo(want, 12);
  });

  it('perplexity is exp of the mean negative logprob', () => {
    const r = (lp: number) => row([['1', lp]], lp);
    expect(perplexity([[r(Math.log(0.5)), r(Math.log(0.25))]]).ppl).toBeCloseTo(Math.sqrt(8), 12);
  });

  it('continuation logprob sums the last n positions', () => {
    const rows = [-1, -2, -3].map((lp) => row([['x', lp]], lp));
    expect(continuationLogprob(rows, 2)).toBe(-5);
  });
});

describe('helpers', () => {
  it('mapPool keeps order and bounds concurrency', async () => {
    let inFlight = 0;
    let most = 0;
    let done = 0;
    const out = await mapPool(
      [5, 1, 3, 2],
      2,
      async (x) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, x));
        inFlight--;
        return x * 10;
      },
      () => done++,
    );
    expect(out).toEqual([50, 10, 30, 20]);
    expect(most).toBe(2);
    expect(done).toBe(4);
  });

  it('renders a progress bar', () => {
    expect(renderBar('bf16 arith-gen', 5, 10, 2, 10)).toBe(
      'bf16 arith-gen █████░░░░░ 5/10 2.5 it/s, 2 s elapsed, 2 s left',
    );
  });
});

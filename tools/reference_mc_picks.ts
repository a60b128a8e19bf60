// Multiple-choice picks of the f64 CPU reference forward (test/models/qwen3_vl_moe_reference.ts, itself checked
// against transformers' golden logits), next to the picks a `dawnllm bench accuracy` report recorded for the same
// checkpoint: which items differ, and by how small a gap. reference-accuracy.json has transformers' totals only,
// so this is how a total that differs by a few items is traced to near-ties rather than damage.
// Usage: npx tsx tools/reference_mc_picks.ts MODEL_DIR TASKS.jsonl REPORT.json baseline|candidate [TASK_KEY]
import { readFileSync } from 'node:fs';
import { applyChatTemplate, ChatTemplate } from '../models/common/chat_template.js';
import { Tokenizer } from '../models/common/tokenizer.js';
import { loadReferenceWeights, referenceForward } from '../test/models/qwen3_vl_moe_reference.js';

const [dir, tasksFile, reportFile, side, key = 'arith-mc (loglik)'] = process.argv.slice(2);
if (!dir || !tasksFile || !reportFile || (side !== 'baseline' && side !== 'candidate')) {
  process.stderr.write('usage: tools/reference_mc_picks.ts MODEL_DIR TASKS.jsonl REPORT.json baseline|candidate\n');
  process.exit(2);
}
interface McItem {
  question: string;
  choices: string[];
  answer: string;
}
interface ReportPick {
  pick: number;
  gap: number;
}
const items = readFileSync(tasksFile, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as McItem);
const report = JSON.parse(readFileSync(reportFile, 'utf8')) as {
  items: Record<string, Record<string, ReportPick[]>>;
};
const picks = report.items[key]?.[side];
if (!picks || picks.length !== items.length)
  throw new Error(
    `${reportFile}: expected ${items.length} ${side} picks under items["${key}"], found ${picks?.length}`,
  );

const tokenizer = Tokenizer.load(dir);
const template = ChatTemplate.load(dir, tokenizer, null);
const w = await loadReferenceWeights(dir);
const V = w.cfg.vocabSize;
let refCorrect = 0;
let ourCorrect = 0;
const differ: string[] = [];
items.forEach((item, i) => {
  const ids = applyChatTemplate(tokenizer, template, [{ role: 'user', content: item.question }], {
    addGenerationPrompt: true,
  }).promptIds;
  const letterIds = item.choices.map((c) => {
    const t = tokenizer.encode(c, { addSpecialTokens: false });
    if (t.length !== 1) throw new Error(`item ${i}: choice "${c}" is ${t.length} tokens, expected one`);
    return t[0];
  });
  const logits = referenceForward(w, ids).logits.subarray((ids.length - 1) * V, ids.length * V);
  const scores = letterIds.map((t) => logits[t]);
  const order = scores.map((_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
  const gold = item.choices.indexOf(item.answer);
  if (order[0] === gold) refCorrect++;
  if (picks[i].pick === gold) ourCorrect++;
  if (order[0] !== picks[i].pick)
    differ.push(
      `  item ${i}: reference picks ${order[0]} (logit gap ${(scores[order[0]] - scores[order[1]]).toExponential(2)}), ` +
        `dawnllm ${picks[i].pick} (logprob gap ${picks[i].gap.toExponential(2)})`,
    );
});
const pct = (n: number) => ((100 * n) / items.length).toFixed(1);
process.stdout.write(
  `${dir}: f64 reference ${pct(refCorrect)} %, dawnllm ${side} ${pct(ourCorrect)} %; ` +
    `${differ.length} of ${items.length} picks differ\n${differ.join('\n')}\n`,
);

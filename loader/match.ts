// Step one of planning: every checkpoint tensor against the rule table. Each tensor must hit exactly one rule
// (consumed) or one ignore rule (ignored, with its reason); anything else becomes a named problem.
import type { Checkpoint, CheckpointTensor } from './checkpoint.js';
import type { ProblemList } from './load_problems.js';
import type { ModelWeightSpec, ParamSpec } from './model_spec.js';
import {
  type CompiledRule,
  compileRule,
  type Fields,
  type IgnoreRule,
  matchRule,
  type Slot,
  type WeightRule,
} from './rules.js';

export interface MatchedTensor {
  tensor: CheckpointTensor;
  rule: WeightRule;
  fields: Fields;
  slot: Slot;
}

export interface IgnoredTensor {
  tensor: CheckpointTensor;
  rule: IgnoreRule;
}

export interface MatchResult {
  /** Matched tensors grouped by the parameter they fill, in checkpoint order. */
  byParam: Map<string, MatchedTensor[]>;
  ignored: IgnoredTensor[];
}

export function matchTensors(ck: Checkpoint, spec: ModelWeightSpec, problems: ProblemList): MatchResult {
  const rules = spec.rules.map(compileRule);
  const ignoreRules = spec.ignoreRules.map(compileRule);
  const params = new Map(spec.params.map((p) => [p.name, p]));
  const byParam = new Map<string, MatchedTensor[]>();
  const ignored: IgnoredTensor[] = [];
  for (const tensor of ck.tensors.values()) {
    const where = `tensor "${tensor.name}" (${tensor.file.fileName})`;
    const hits = findHits(rules, tensor.name);
    const ignoreHits = findHits(ignoreRules, tensor.name);
    const names = [...hits, ...ignoreHits].map((h) => h.rule.name);
    if (names.length === 0) {
      problems.add(
        'unmatched_tensor',
        tensor.name,
        `${where} matched no rule in ${spec.rulesFile}; ${nearestRuleHint(spec, tensor.name)}`,
      );
      continue;
    }
    if (names.length > 1) {
      problems.add('ambiguous_rule', tensor.name, `${where} matched rules ${names.join(', ')}; rules must not overlap`);
      continue;
    }
    if (ignoreHits.length === 1) {
      ignored.push({ tensor, rule: ignoreHits[0].rule });
      continue;
    }
    const { rule, fields } = hits[0];
    const slot = rule.resolve(fields);
    const param = params.get(slot.param);
    const unknown = param ? slotProblem(param, slot) : `parameter "${slot.param}" does not exist in this model`;
    if (unknown) {
      problems.add('unknown_param', tensor.name, `${where} (rule ${rule.name}): ${unknown}`);
      continue;
    }
    const list = byParam.get(slot.param) ?? [];
    list.push({ tensor, rule, fields, slot });
    byParam.set(slot.param, list);
  }
  return { byParam, ignored };
}

function findHits<R extends WeightRule | IgnoreRule>(rules: CompiledRule<R>[], name: string) {
  const hits: { rule: R; fields: Fields }[] = [];
  for (const c of rules) {
    const fields = matchRule(c, name);
    if (fields) hits.push({ rule: c.rule, fields });
  }
  return hits;
}

/** Expert index and segment must exist in the parameter the rule points at. */
function slotProblem(param: ParamSpec, slot: Slot): string | null {
  if (slot.layout === 'whole' && param.kind === 'experts') return `"${param.name}" is an expert stack, not one matrix`;
  if (slot.layout !== 'whole' && param.kind !== 'experts') return `"${param.name}" is not an expert stack`;
  if (slot.expert !== null && slot.expert >= param.shape[0]) {
    return `expert ${slot.expert} is out of range for "${param.name}" with ${param.shape[0]} experts`;
  }
  if (slot.segment !== null && param.segments && !param.segments.some((s) => s.name === slot.segment)) {
    return `"${param.name}" has no segment "${slot.segment}"`;
  }
  return null;
}

/** Points at the rules sharing the longest literal prefix with the name, so a near miss reads as one. */
function nearestRuleHint(spec: ModelWeightSpec, name: string): string {
  const prefixOf = (t: string) => t.slice(0, t.indexOf('{') < 0 ? t.length : t.indexOf('{'));
  let best: WeightRule[] = [];
  let bestLen = 0;
  for (const r of spec.rules) {
    const p = prefixOf(r.template);
    let n = 0;
    while (n < p.length && n < name.length && p[n] === name[n]) n++;
    if (n > bestLen) {
      bestLen = n;
      best = [r];
    } else if (n === bestLen && n > 0) best.push(r);
  }
  if (best.length === 0) return 'no rule shares its prefix';
  return `closest: ${best
    .slice(0, 3)
    .map((r) => `${r.name} (${r.template})`)
    .join(', ')}`;
}

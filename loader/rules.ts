// The rule engine: each rule is a named name template compiled to an anchored regular expression. A checkpoint
// tensor must match exactly one rule (or one ignore rule); no substring tests anywhere.
import { LoaderError } from '../core/errors.js';

/** What a tensor is to its parameter. `data` is the weight itself (`weight`, `weight_packed`, or a bare name). */
export type TensorRole =
  | 'data'
  | 'weight_scale'
  | 'weight_scale_2'
  | 'weight_global_scale'
  | 'input_scale'
  | 'input_global_scale'
  | 'weight_scale_inv'
  | 'pre_quant_scale';

/**
 * whole: the tensor (with its scales) is the whole parameter.
 * expert_slice: one expert's rows of one segment (ModelOpt per-expert names).
 * fused_experts: all experts in one tensor; its orientation is decided from the shapes.
 */
export type SourceLayout = 'whole' | 'expert_slice' | 'fused_experts';

export interface Slot {
  param: string;
  role: TensorRole;
  layout: SourceLayout;
  expert: number | null;
  segment: string | null;
}

export type Fields = Record<string, string>;

export interface RuleBase {
  name: string;
  /** e.g. 'model.language_model.layers.{layer}.mlp.experts.{proj}.{expert}.{suffix}'. */
  template: string;
  /** Regular-expression alternatives per placeholder; placeholders not listed use `defaultFields`. */
  fields?: Fields;
  /** A name the rule must match; the tests check every rule against its example. */
  example: string;
}

export interface WeightRule extends RuleBase {
  resolve(fields: Fields): Slot;
  description: string;
}

export interface IgnoreRule extends RuleBase {
  reason: string;
}

/** Suffixes that name a linear module's weight and scales (`.weight`, `.weight_scale_2`, ...). */
export const quantSuffixes = [
  'weight',
  'weight_packed',
  'weight_scale',
  'weight_scale_2',
  'weight_global_scale',
  'input_scale',
  'input_global_scale',
  'weight_scale_inv',
  'pre_quant_scale',
] as const;

export function suffixRole(suffix: string): TensorRole {
  if (suffix === 'weight' || suffix === 'weight_packed' || suffix === '') return 'data';
  if ((quantSuffixes as readonly string[]).includes(suffix)) return suffix as TensorRole;
  throw new LoaderError('DAWN_ERR_LOADER_RULE', `no tensor role for suffix "${suffix}"`);
}

/** Escapes literal names for use as placeholder alternatives: oneOf('attn.qkv', 'attn.proj'). */
export function oneOf(...names: string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

export const defaultFields: Fields = {
  layer: '\\d+',
  expert: '\\d+',
  block: '\\d+',
  index: '\\d+',
  suffix: oneOf(...quantSuffixes),
};

export interface CompiledRule<R extends RuleBase> {
  rule: R;
  regex: RegExp;
}

const placeholder = /\{(\w+)\}/g;

export function compileRule<R extends RuleBase>(rule: R): CompiledRule<R> {
  let source = '';
  let last = 0;
  for (const m of rule.template.matchAll(placeholder)) {
    source += oneOf(rule.template.slice(last, m.index));
    const name = m[1];
    const alt = rule.fields?.[name] ?? defaultFields[name];
    if (alt === undefined) {
      throw new LoaderError('DAWN_ERR_LOADER_RULE', `rule ${rule.name}: placeholder {${name}} has no pattern`);
    }
    source += `(?<${name}>${alt})`;
    last = m.index + m[0].length;
  }
  source += oneOf(rule.template.slice(last));
  return { rule, regex: new RegExp(`^${source}$`) };
}

/** Fills a template's placeholders: the inverse of matching, used to name tensors a checkpoint lacks. */
export function formatTemplate(template: string, fields: Fields): string {
  return template.replace(placeholder, (_, name: string) => fields[name] ?? `<${name}>`);
}

export function matchRule<R extends RuleBase>(c: CompiledRule<R>, name: string): Fields | null {
  const m = c.regex.exec(name);
  return m ? { ...(m.groups ?? {}) } : null;
}

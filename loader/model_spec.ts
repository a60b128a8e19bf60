// What a model tells the loader: its parameters (name, shape, kind) and its rule table. Models build this from
// their parsed config; the loader knows no architecture.
import type { IgnoreRule, WeightRule } from './rules.js';

/**
 * dense: stored as bf16 whatever the file held (norms, embeddings, biases, convolutions).
 * linear: W [N, K], y = x · Wᵀ.  experts: W [E, N, K], one stacked buffer per projection.
 */
export type ParamKind = 'dense' | 'linear' | 'experts';

export interface ParamSegment {
  /** The name per-expert rules give this row range ('gate', 'up', 'down'). */
  name: string;
  rows: number;
}

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  shape: number[];
  /** May arrive as NVFP4 or FP8; otherwise only BF16/F16/F32 is accepted. */
  isQuantizable: boolean;
  /** Row segments of linear/experts params, in row order; one segment covering all rows when omitted. */
  segments?: ParamSegment[];
  /** For reports: 'text', 'vision', ... */
  group: string;
}

export interface ModelWeightSpec {
  architecture: string;
  /** Where the rules live, for error messages ("matched no rule in models/qwen3_vl_moe/weights.ts"). */
  rulesFile: string;
  params: ParamSpec[];
  rules: WeightRule[];
  ignoreRules: IgnoreRule[];
}

export function segmentsOf(p: ParamSpec): ParamSegment[] {
  if (p.segments) return p.segments;
  const rows = p.kind === 'dense' ? 0 : p.shape[p.shape.length - 2];
  return [{ name: p.kind === 'experts' ? p.name.slice(p.name.lastIndexOf('.') + 1) : 'all', rows }];
}

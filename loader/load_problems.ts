// Everything that can stop a load, collected (not thrown one at a time) so the report names all of it at once.
import { LoaderError, listSome } from '../core/errors.js';

export type ProblemKind =
  | 'unmatched_tensor'
  | 'ambiguous_rule'
  | 'unknown_param'
  | 'duplicate'
  | 'missing_param'
  | 'missing_tensor'
  | 'missing_scale'
  | 'shape_mismatch'
  | 'dtype_mismatch'
  | 'format_conflict'
  | 'orientation_ambiguous'
  | 'unsupported';

export interface LoadProblem {
  kind: ProblemKind;
  /** The tensor or parameter the problem is about (listed in the summary). */
  subject: string;
  /** The full sentence: expected, found, where. */
  message: string;
}

const headings: Record<ProblemKind, string> = {
  unmatched_tensor: 'tensors matched no rule',
  ambiguous_rule: 'tensors matched more than one rule',
  unknown_param: 'tensors map to parameters the model does not have',
  duplicate: 'parameters filled more than once',
  missing_param: 'parameters no tensor fills',
  missing_tensor: 'expert slices missing',
  missing_scale: 'quantized weights without their scales',
  shape_mismatch: 'tensors with the wrong shape',
  dtype_mismatch: 'tensors with the wrong dtype',
  format_conflict: 'tensors disagreeing with the quantization config',
  orientation_ambiguous: 'fused expert tensors whose orientation the shapes cannot decide',
  unsupported: 'unsupported tensors',
};

export class ProblemList {
  readonly items: LoadProblem[] = [];

  add(kind: ProblemKind, subject: string, message: string): void {
    this.items.push({ kind, subject, message });
  }

  get isEmpty(): boolean {
    return this.items.length === 0;
  }
}

/** One paragraph per kind: a count, a short list of subjects, and the first full message. */
export function summarizeProblems(problems: readonly LoadProblem[], maxListed = 6): string {
  const byKind = new Map<ProblemKind, LoadProblem[]>();
  for (const p of problems) {
    const list = byKind.get(p.kind) ?? [];
    list.push(p);
    byKind.set(p.kind, list);
  }
  const parts: string[] = [];
  for (const [kind, list] of byKind) {
    const subjects = [...new Set(list.map((p) => p.subject))];
    parts.push(`${list.length} ${headings[kind]}: ${listSome(subjects, maxListed)}\n    e.g. ${list[0].message}`);
  }
  return parts.join('\n  ');
}

export function problemsError(dir: string, rulesFile: string, problems: readonly LoadProblem[]): LoaderError {
  const kinds = new Set(problems.map((p) => p.kind));
  const code = kinds.size === 1 ? `DAWN_ERR_LOADER_${[...kinds][0].toUpperCase()}` : 'DAWN_ERR_LOADER_CHECK_FAILED';
  return new LoaderError(
    code,
    `loader: checkpoint ${dir} does not map onto the model (${problems.length} problems, nothing was uploaded):\n  ${summarizeProblems(problems)}`,
    { hint: `the rules live in ${rulesFile}; \`dawnllm inspect ${dir}\` shows the rule each tensor hit` },
  );
}

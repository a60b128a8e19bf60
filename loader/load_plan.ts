// The whole plan for one checkpoint, from headers only: format, rule hits, one IR plan per parameter, and the
// problems. Nothing here reads tensor data or touches the GPU; `assertLoadable` stops before either happens.
import { logger } from '../core/log.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { type LoadProblem, ProblemList, problemsError } from './load_problems.js';
import { type IgnoredTensor, type MatchResult, matchTensors } from './match.js';
import type { ModelWeightSpec } from './model_spec.js';
import { type ParamPlan, type PlanOptions, planParams } from './param_plan.js';
import { type QuantScheme, readQuantScheme } from './quant_scheme.js';

const log = logger('loader');

export interface LoadPlan {
  dir: string;
  checkpoint: Checkpoint;
  scheme: QuantScheme;
  spec: ModelWeightSpec;
  params: ParamPlan[];
  matches: MatchResult;
  ignored: IgnoredTensor[];
  problems: LoadProblem[];
}

/**
 * Opens the checkpoint and plans the load. Corrupt files and unknown schemes throw at once; mapping problems
 * are collected in `problems` so a report can show all of them. Close `checkpoint` when done.
 */
export async function planLoad(dir: string, spec: ModelWeightSpec, opts: PlanOptions = {}): Promise<LoadPlan> {
  const scheme = await readQuantScheme(dir);
  const checkpoint = await openCheckpoint(dir);
  try {
    const problems = new ProblemList();
    const match = matchTensors(checkpoint, spec, problems);
    const params = planParams(checkpoint, spec.params, scheme, match, problems, opts);
    checkEveryTensorAccounted(checkpoint, params, match.ignored, problems.items);
    return { dir, checkpoint, scheme, spec, params, matches: match, ignored: match.ignored, problems: problems.items };
  } catch (err) {
    await checkpoint.close();
    throw err;
  }
}

/** Throws one LoaderError naming every problem (short lists plus counts); nothing has been read or uploaded yet. */
export function assertLoadable(plan: LoadPlan): void {
  if (plan.problems.length > 0) throw problemsError(plan.dir, plan.spec.rulesFile, plan.problems);
  for (const p of plan.params)
    for (const note of p.notes) if (note.includes('although')) log.warn(`${p.spec.name}: ${note}`);
}

/**
 * The invariant the report promises: each tensor is consumed by exactly one planned parameter, ignored by a
 * named rule, or the subject of a problem. A tensor in none of these would be silently dropped.
 */
function checkEveryTensorAccounted(
  ck: Checkpoint,
  params: ParamPlan[],
  ignored: IgnoredTensor[],
  problems: LoadProblem[],
): void {
  if (problems.length > 0) return; // failed params do not list their sources; the problems already stop the load
  const seen = new Set<string>();
  for (const p of params) for (const s of p.sources) seen.add(s.tensor.name);
  for (const i of ignored) seen.add(i.tensor.name);
  const dropped = [...ck.tensors.keys()].filter((n) => !seen.has(n));
  for (const name of dropped) {
    problems.push({
      kind: 'unmatched_tensor',
      subject: name,
      message: `tensor "${name}" was matched but no parameter consumed it (loader bug)`,
    });
  }
}

// Shared by the loader tests: the Qwen3-VL-MoE weight spec of a checkpoint directory, and fixture lookup with a
// printed skip reason.
import { findFixture, missingFixtureReason } from '../helpers/fixtures.js';
import { buildLoadReport, type LoadReport } from '../../loader/load_report.js';
import { planLoad } from '../../loader/load_plan.js';
import { loadHostWeights } from '../../loader/materialize.js';
import type { ModelWeightSpec } from '../../loader/model_spec.js';
import { readQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { qwen3VlMoeWeightSpec } from '../../models/qwen3_vl_moe/weights.js';

export async function specFor(dir: string): Promise<ModelWeightSpec> {
  return qwen3VlMoeWeightSpec(await readQwen3VlMoeConfig(dir));
}

export async function loadDir(dir: string) {
  return loadHostWeights(dir, await specFor(dir));
}

/** Plans without throwing on mapping problems and returns the report. */
export async function reportFor(dir: string): Promise<LoadReport> {
  const plan = await planLoad(dir, await specFor(dir));
  try {
    return buildLoadReport(plan);
  } finally {
    await plan.checkpoint.close();
  }
}

/** The fixture's path, or null after printing why the tests that need it are skipped. */
export function fixtureOrSkip(rel: string): string | null {
  const dir = findFixture(rel);
  if (!dir) console.log(`skipping: ${missingFixtureReason(rel)}`);
  return dir;
}

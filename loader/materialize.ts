// Produces IR bytes on the host: every piece of every buffer, concatenated. Used by tests and CPU references;
// the GPU path streams the same pieces through loader/upload.ts instead.
import { LoaderError } from '../core/errors.js';
import { type IrTensor, mapIrBuffers } from './ir.js';
import { assertLoadable, type LoadPlan, planLoad } from './load_plan.js';
import type { ModelWeightSpec } from './model_spec.js';
import type { ParamPlan } from './param_plan.js';
import type { BufferPlan } from './pieces.js';

export async function materializeBuffer(plan: BufferPlan, label: string): Promise<Uint8Array> {
  const out = new Uint8Array(plan.byteLength);
  let offset = 0;
  for (const piece of plan.pieces) {
    const bytes = await piece.produce();
    if (bytes.byteLength !== piece.byteLength) {
      throw new LoaderError(
        'DAWN_ERR_LOADER_INTERNAL',
        `${label}.${plan.name}: a piece produced ${bytes.byteLength} bytes, planned ${piece.byteLength}`,
      );
    }
    out.set(bytes, offset);
    offset += bytes.byteLength;
  }
  return out;
}

export function materializeParam(p: ParamPlan): Promise<IrTensor> {
  return mapIrBuffers(p.ir, (_, b) => materializeBuffer(b, p.spec.name));
}

/** Plans, checks and reads a whole checkpoint into host memory (small models and tests only). */
export async function loadHostWeights(
  dir: string,
  spec: ModelWeightSpec,
): Promise<{ plan: LoadPlan; weights: Map<string, IrTensor> }> {
  const plan = await planLoad(dir, spec);
  try {
    assertLoadable(plan);
    const weights = new Map<string, IrTensor>();
    for (const p of plan.params) weights.set(p.spec.name, await materializeParam(p));
    return { plan, weights };
  } finally {
    await plan.checkpoint.close();
  }
}

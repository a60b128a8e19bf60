// Fused expert tensors hold all experts of one projection: [E, N, K] used as x · Wᵀ (transformers 5, and packed
// exports that quantize along K) or [E, K, N] used as x · W (the Hub release of Qwen3-VL-MoE, Llama4-style packed
// exports). Which one a tensor is follows from its shape against the config; the checkpoint decides as a whole,
// so a square tensor (H == 2I for gate_up, H == I for down) takes the orientation its unambiguous siblings show.

import type { CheckpointTensor } from './checkpoint.js';
import { formatShape, isFloatDtype } from './dtypes.js';
import {
  type ClassifyContext,
  describeTensor,
  encodingAgrees,
  expectedName,
  nvfp4GroupSize,
  nvfp4Source,
  type RoleGroup,
  type ScaleSource,
} from './linear_source.js';
import type { ParamSpec } from './model_spec.js';
import { isScalarShape } from './pieces.js';

/** nk: [E, N, K] (y = x · W[e]ᵀ). kn: [E, K, N] (y = x · W[e]), transposed once at load. */
export type Orientation = 'nk' | 'kn';

export type FusedSource =
  | { encoding: 'bf16'; data: CheckpointTensor; orientation: Orientation }
  | {
      encoding: 'nvfp4';
      data: CheckpointTensor;
      blockScale: CheckpointTensor;
      global: ScaleSource;
      input: ScaleSource | null;
      preQuant: CheckpointTensor | null;
      orientation: Orientation;
    }
  | {
      encoding: 'fp8';
      data: CheckpointTensor;
      scale: CheckpointTensor;
      input: ScaleSource | null;
      orientation: Orientation;
    };

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The [data, block scale] shapes each orientation implies for this parameter and dtype. */
function shapesFor(p: ParamSpec, dtype: string, o: Orientation): { data: number[]; scale: number[] | null } {
  const [E, N, K] = p.shape;
  const kDiv = dtype === 'U8' ? 2 : 1;
  const data = o === 'nk' ? [E, N, K / kDiv] : [E, K / kDiv, N];
  const scale = dtype === 'U8' ? (o === 'nk' ? [E, N, K / nvfp4GroupSize] : [E, K / nvfp4GroupSize, N]) : null;
  return { data, scale };
}

/** Orientations the data (and block scale) shapes allow; none is a shape problem reported here. */
export function fusedCandidates(p: ParamSpec, g: RoleGroup, ctx: ClassifyContext): Orientation[] {
  const data = g.get('data');
  if (!data) return [];
  const t = data.tensor;
  const bs = g.get('weight_scale')?.tensor;
  const out = (['nk', 'kn'] as const).filter((o) => {
    const s = shapesFor(p, t.dtype, o);
    return same(t.shape, s.data) && (!bs || !s.scale || same(bs.shape, s.scale));
  });
  if (out.length === 0) {
    const nk = shapesFor(p, t.dtype, 'nk');
    const kn = shapesFor(p, t.dtype, 'kn');
    ctx.problems.add(
      'shape_mismatch',
      t.name,
      `${describeTensor(t)}${bs ? ` with block scales ${formatShape(bs.shape)}` : ''}: expected ${formatShape(nk.data)} ` +
        `(x·Wᵀ) or ${formatShape(kn.data)} (x·W) for parameter "${p.name}" ${formatShape(p.shape)}`,
    );
  }
  return out;
}

/** Checks the scales of a fused tensor once its orientation is known. */
export function classifyFused(
  p: ParamSpec,
  g: RoleGroup,
  orientation: Orientation,
  ctx: ClassifyContext,
): FusedSource | null {
  const data = g.get('data');
  if (!data) {
    const names = [...g.values()].map((m) => `"${m.tensor.name}"`).join(', ');
    ctx.problems.add('missing_tensor', p.name, `parameter "${p.name}": found ${names} but not the fused weight itself`);
    return null;
  }
  const t = data.tensor;
  const E = p.shape[0];
  const K = p.shape[2];
  const extra = (allowed: string[]) => {
    const bad = [...g.entries()].filter(([r]) => !allowed.includes(r));
    for (const [, m] of bad)
      ctx.problems.add(
        'format_conflict',
        m.tensor.name,
        `${describeTensor(m.tensor)} does not belong to ${describeTensor(t)}`,
      );
    return bad.length > 0;
  };
  const scalar = (m: { tensor: CheckpointTensor } | undefined): boolean => {
    if (!m) return true;
    const ok = (isScalarShape(m.tensor.shape) || same(m.tensor.shape, [E])) && isFloatDtype(m.tensor.dtype);
    if (!ok) {
      ctx.problems.add(
        'shape_mismatch',
        m.tensor.name,
        `${describeTensor(m.tensor)}: expected a float scale of shape [], [1] or [${E}] for "${p.name}"`,
      );
    }
    return ok;
  };
  if (isFloatDtype(t.dtype)) return extra(['data']) ? null : { encoding: 'bf16', data: t, orientation };
  if (!encodingAgrees(t, ctx)) return null;
  const missing = (role: 'weight_scale' | 'weight_scale_2') => {
    ctx.problems.add(
      'missing_scale',
      expectedName(data, role),
      `${describeTensor(t)} is quantized but "${expectedName(data, role)}" is missing`,
    );
    return null;
  };
  const input = g.get('input_scale') ?? g.get('input_global_scale');
  if (t.dtype === 'U8') {
    if (
      extra([
        'data',
        'weight_scale',
        'weight_scale_2',
        'weight_global_scale',
        'input_scale',
        'input_global_scale',
        'pre_quant_scale',
      ])
    )
      return null;
    const bs = g.get('weight_scale');
    const gs = g.get('weight_scale_2') ?? g.get('weight_global_scale');
    if (!bs) return missing('weight_scale');
    if (!gs) return missing('weight_scale_2');
    const pq = g.get('pre_quant_scale');
    let ok = scalar(gs) && scalar(input);
    if (bs.tensor.dtype !== 'F8_E4M3') {
      ctx.problems.add('dtype_mismatch', bs.tensor.name, `${describeTensor(bs.tensor)}: expected F8_E4M3 block scales`);
      ok = false;
    }
    if (pq && !(same(pq.tensor.shape, [K]) || same(pq.tensor.shape, [E, K]))) {
      ctx.problems.add(
        'shape_mismatch',
        pq.tensor.name,
        `${describeTensor(pq.tensor)}: expected [${K}] or [${E}, ${K}]`,
      );
      ok = false;
    }
    if (!ok) return null;
    return { ...nvfp4Source(t, bs, gs, input, pq), orientation };
  }
  if (t.dtype === 'F8_E4M3') {
    if (extra(['data', 'weight_scale', 'weight_scale_inv', 'input_scale'])) return null;
    const scale = g.get('weight_scale') ?? g.get('weight_scale_inv');
    if (!scale) return missing('weight_scale');
    if (!(scalar(scale) && scalar(input))) return null;
    return {
      encoding: 'fp8',
      data: t,
      scale: scale.tensor,
      input: input ? { tensor: input.tensor, invert: false } : null,
      orientation,
    };
  }
  ctx.problems.add('unsupported', t.name, `${describeTensor(t)}: fused experts of dtype ${t.dtype} are not supported`);
  return null;
}

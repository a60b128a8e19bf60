// Recognizes what one matrix's tensors encode — BF16, NVFP4 or FP8 — from their dtypes and shapes, and checks
// each tensor's shape against the parameter. Scale semantics are fixed here by suffix: weight_scale_2 and
// input_scale multiply, weight_global_scale and input_global_scale divide (compressed-tensors), weight_scale_inv
// multiplies despite its name.
import type { CheckpointTensor } from './checkpoint.js';
import { formatShape, isFloatDtype } from './dtypes.js';
import type { ProblemList } from './load_problems.js';
import type { MatchedTensor } from './match.js';
import { isScalarShape } from './pieces.js';
import { describeScheme, type Fp8Granularity, type QuantScheme, schemeEncoding } from './quant_scheme.js';
import { formatTemplate, type TensorRole } from './rules.js';

export type RoleGroup = Map<TensorRole, MatchedTensor>;

/** A per-tensor scale and whether it must be inverted to multiply. */
export interface ScaleSource {
  tensor: CheckpointTensor;
  invert: boolean;
}

export type SliceSource =
  | { encoding: 'bf16'; data: CheckpointTensor }
  | {
      encoding: 'nvfp4';
      data: CheckpointTensor;
      blockScale: CheckpointTensor;
      global: ScaleSource;
      input: ScaleSource | null;
      preQuant: CheckpointTensor | null;
    }
  | {
      encoding: 'fp8';
      data: CheckpointTensor;
      scale: CheckpointTensor;
      granularity: Fp8Granularity;
      block: [number, number] | null;
      input: ScaleSource | null;
    };

export const nvfp4GroupSize = 16;

export type Nvfp4Source = Extract<SliceSource, { encoding: 'nvfp4' }>;

/**
 * An NVFP4 weight's tensors by role, each scale with the direction it applies in: `weight_scale_2` and
 * `input_scale` multiply (ModelOpt); `weight_global_scale` and `input_global_scale` divide (compressed-tensors).
 */
export function nvfp4Source(
  data: CheckpointTensor,
  blockScale: MatchedTensor,
  global: MatchedTensor,
  input: MatchedTensor | null | undefined,
  preQuant: MatchedTensor | null | undefined,
): Nvfp4Source {
  return {
    encoding: 'nvfp4',
    data,
    blockScale: blockScale.tensor,
    global: { tensor: global.tensor, invert: global.slot.role === 'weight_global_scale' },
    input: input ? { tensor: input.tensor, invert: input.slot.role === 'input_global_scale' } : null,
    preQuant: preQuant?.tensor ?? null,
  };
}

export function describeTensor(t: CheckpointTensor): string {
  return `"${t.name}" ${t.dtype} ${formatShape(t.shape)} (${t.file.fileName})`;
}

/** The name a missing sibling tensor would have: same rule and fields, another suffix (a role name or 'weight'). */
export function expectedName(sibling: MatchedTensor, suffix: string): string {
  if (sibling.fields.suffix !== undefined) return formatTemplate(sibling.rule.template, { ...sibling.fields, suffix });
  return `${sibling.tensor.name}_${suffix}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Context shared by the checks of one parameter. */
export interface ClassifyContext {
  param: string;
  scheme: QuantScheme;
  problems: ProblemList;
}

/** Picks exactly one of two alternative roles (e.g. weight_scale_2 vs weight_global_scale). */
function oneOf(g: RoleGroup, a: TensorRole, b: TensorRole, ctx: ClassifyContext): MatchedTensor | null | 'both' {
  const x = g.get(a);
  const y = g.get(b);
  if (x && y) {
    ctx.problems.add(
      'duplicate',
      ctx.param,
      `parameter "${ctx.param}" has both ${describeTensor(x.tensor)} and ${describeTensor(y.tensor)}; expected one`,
    );
    return 'both';
  }
  return x ?? y ?? null;
}

function rejectRoles(g: RoleGroup, allowed: readonly TensorRole[], what: string, ctx: ClassifyContext): boolean {
  const extra = [...g.entries()].filter(([role]) => !allowed.includes(role));
  for (const [, m] of extra) {
    ctx.problems.add('format_conflict', m.tensor.name, `${describeTensor(m.tensor)} does not belong to ${what}`);
  }
  return extra.length === 0;
}

function expectShape(t: CheckpointTensor, shape: readonly number[], what: string, ctx: ClassifyContext): boolean {
  if (sameShape(t.shape, shape)) return true;
  ctx.problems.add(
    'shape_mismatch',
    t.name,
    `${describeTensor(t)}: expected ${formatShape(shape)} (${what}) for parameter "${ctx.param}"`,
  );
  return false;
}

function expectDtype(t: CheckpointTensor, ok: boolean, expected: string, ctx: ClassifyContext): boolean {
  if (ok) return true;
  ctx.problems.add('dtype_mismatch', t.name, `${describeTensor(t)}: expected ${expected} for parameter "${ctx.param}"`);
  return false;
}

function expectScalar(t: CheckpointTensor, ctx: ClassifyContext, allowExperts = 0): boolean {
  const ok = isScalarShape(t.shape) || (allowExperts > 0 && sameShape(t.shape, [allowExperts]));
  const shapes = allowExperts > 0 ? `[], [1] or [${allowExperts}]` : '[] or [1]';
  if (!ok) {
    ctx.problems.add(
      'shape_mismatch',
      t.name,
      `${describeTensor(t)}: expected a scale of shape ${shapes} for "${ctx.param}"`,
    );
  }
  return expectDtype(t, isFloatDtype(t.dtype), 'F32/BF16/F16', ctx) && ok;
}

function missing(data: MatchedTensor, role: TensorRole, what: string, ctx: ClassifyContext): null {
  ctx.problems.add(
    'missing_scale',
    expectedName(data, role),
    `${describeTensor(data.tensor)} is ${what} but "${expectedName(data, role)}" is missing (parameter "${ctx.param}")`,
  );
  return null;
}

/** Classifies the tensors of one [rows, cols] matrix (a whole linear, or one expert's gate/up/down slice). */
export function classifySlice(g: RoleGroup, rows: number, cols: number, ctx: ClassifyContext): SliceSource | null {
  const data = g.get('data');
  if (!data) {
    const any = [...g.values()][0];
    ctx.problems.add(
      'missing_tensor',
      ctx.param,
      `parameter "${ctx.param}": found scales ${[...g.values()].map((m) => `"${m.tensor.name}"`).join(', ')} but no weight${any ? ` (expected "${expectedName(any, 'weight')}")` : ''}`,
    );
    return null;
  }
  const t = data.tensor;
  if (isFloatDtype(t.dtype)) {
    if (!rejectRoles(g, ['data'], `the BF16 weight ${describeTensor(t)}`, ctx)) return null;
    return expectShape(t, [rows, cols], '[N, K]', ctx) ? { encoding: 'bf16', data: t } : null;
  }
  if (!encodingAgrees(t, ctx)) return null;
  if (t.dtype === 'U8') return classifyNvfp4(g, data, rows, cols, ctx);
  if (t.dtype === 'F8_E4M3') return classifyFp8(g, data, rows, cols, ctx);
  ctx.problems.add('unsupported', t.name, `${describeTensor(t)}: weights of dtype ${t.dtype} are not supported`);
  return null;
}

/** A packed U8 weight needs an NVFP4 scheme, an F8_E4M3 weight an FP8 one. */
export function encodingAgrees(t: CheckpointTensor, ctx: ClassifyContext): boolean {
  const found = t.dtype === 'U8' ? 'nvfp4' : t.dtype === 'F8_E4M3' ? 'fp8' : null;
  if (found === null || found === schemeEncoding(ctx.scheme)) return true;
  ctx.problems.add(
    'format_conflict',
    t.name,
    `${describeTensor(t)} is ${found === 'nvfp4' ? 'packed NVFP4' : 'FP8'} but ${ctx.scheme.source} describes ${describeScheme(ctx.scheme)}`,
  );
  return false;
}

function classifyNvfp4(
  g: RoleGroup,
  data: MatchedTensor,
  rows: number,
  cols: number,
  ctx: ClassifyContext,
): SliceSource | null {
  const t = data.tensor;
  const allowed: TensorRole[] = [
    'data',
    'weight_scale',
    'weight_scale_2',
    'weight_global_scale',
    'input_scale',
    'input_global_scale',
    'pre_quant_scale',
  ];
  if (!rejectRoles(g, allowed, `the NVFP4 weight ${describeTensor(t)}`, ctx)) return null;
  if (cols % nvfp4GroupSize !== 0) {
    ctx.problems.add('unsupported', t.name, `${describeTensor(t)}: NVFP4 needs K = ${cols} to be a multiple of 16`);
    return null;
  }
  let ok = expectShape(t, [rows, cols / 2], 'packed NVFP4 [N, K/2]', ctx);
  const bs = g.get('weight_scale') ?? missing(data, 'weight_scale', 'packed NVFP4', ctx);
  const gs = oneOf(g, 'weight_scale_2', 'weight_global_scale', ctx);
  if (gs === null)
    missing(data, ctx.scheme.kind === 'ct_nvfp4' ? 'weight_global_scale' : 'weight_scale_2', 'packed NVFP4', ctx);
  const input = oneOf(g, 'input_scale', 'input_global_scale', ctx);
  const pq = g.get('pre_quant_scale') ?? null;
  if (!bs || gs === null || gs === 'both' || input === 'both') return null;
  ok = expectShape(bs.tensor, [rows, cols / nvfp4GroupSize], 'E4M3 block scales [N, K/16]', ctx) && ok;
  ok = expectDtype(bs.tensor, bs.tensor.dtype === 'F8_E4M3', 'F8_E4M3 block scales', ctx) && ok;
  ok = expectScalar(gs.tensor, ctx) && ok;
  if (input) ok = expectScalar(input.tensor, ctx) && ok;
  if (pq)
    ok =
      expectShape(pq.tensor, [cols], 'pre_quant_scale [K]', ctx) &&
      expectDtype(pq.tensor, isFloatDtype(pq.tensor.dtype), 'a float dtype', ctx) &&
      ok;
  if (!ok) return null;
  return nvfp4Source(t, bs, gs, input, pq);
}

/** Block size the scheme promises for FP8 block scales. */
function schemeBlock(s: QuantScheme): [number, number] | null {
  return s.kind === 'modelopt_fp8' || s.kind === 'ct_fp8' || s.kind === 'fp8_block' ? s.blockSize : null;
}

function schemeGranularity(s: QuantScheme): Fp8Granularity | null {
  return s.kind === 'modelopt_fp8' || s.kind === 'ct_fp8' || s.kind === 'fp8_block' ? s.granularity : null;
}

/** The shapes an FP8 weight scale may have for each granularity; block accepts ModelOpt's 4-D [N/bn,1,K/bk,1]. */
export function fp8ScaleShapes(
  g: Fp8Granularity,
  rows: number,
  cols: number,
  block: [number, number] | null,
): number[][] {
  if (g === 'tensor') return [[], [1]];
  if (g === 'channel') return [[rows], [rows, 1]];
  if (!block) return [];
  const rb = Math.ceil(rows / block[0]);
  const cb = Math.ceil(cols / block[1]);
  return [
    [rb, cb],
    [rb, 1, cb, 1],
  ];
}

function classifyFp8(
  g: RoleGroup,
  data: MatchedTensor,
  rows: number,
  cols: number,
  ctx: ClassifyContext,
): SliceSource | null {
  const t = data.tensor;
  if (
    !rejectRoles(
      g,
      ['data', 'weight_scale', 'weight_scale_inv', 'input_scale'],
      `the FP8 weight ${describeTensor(t)}`,
      ctx,
    )
  )
    return null;
  let ok = expectShape(t, [rows, cols], 'FP8 [N, K]', ctx);
  const scale = oneOf(g, 'weight_scale', 'weight_scale_inv', ctx);
  if (scale === null)
    return missing(data, ctx.scheme.kind === 'fp8_block' ? 'weight_scale_inv' : 'weight_scale', 'FP8', ctx);
  if (scale === 'both') return null;
  const input = g.get('input_scale') ?? null;
  if (input) ok = expectScalar(input.tensor, ctx) && ok;
  const granularity = schemeGranularity(ctx.scheme) ?? 'tensor'; // encodingAgrees made the scheme an FP8 one
  const block = schemeBlock(ctx.scheme);
  const shapes = fp8ScaleShapes(granularity, rows, cols, block);
  const s = scale.tensor;
  if (!shapes.some((sh) => sameShape(sh, s.shape))) {
    ctx.problems.add(
      'shape_mismatch',
      s.name,
      `${describeTensor(s)}: expected ${shapes.map(formatShape).join(' or ')} (${granularity} scales per ${ctx.scheme.source}) for "${ctx.param}"`,
    );
    ok = false;
  }
  ok = expectDtype(s, isFloatDtype(s.dtype), 'F32/BF16/F16 scales', ctx) && ok;
  if (!ok) return null;
  return {
    encoding: 'fp8',
    data: t,
    scale: s,
    granularity,
    block: granularity === 'block' ? block : null,
    input: input ? { tensor: input.tensor, invert: false } : null,
  };
}

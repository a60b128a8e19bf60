// Step two of planning: for every model parameter, the tensors that fill it, what they encode, and the IR they
// become. Problems (missing, duplicate, wrong shape, wrong scheme) are collected, never thrown one by one.

import type { Checkpoint } from './checkpoint.js';
import { formatShape, isFloatDtype } from './dtypes.js';
import { classifyFused, type FusedSource, fusedCandidates, type Orientation } from './fused_experts.js';
import type { IrFormat, IrTensor } from './ir.js';
import { type BuildContext, buildDense, buildFromSlices, buildFused } from './ir_build.js';
import {
  type ClassifyContext,
  classifySlice,
  describeTensor,
  expectedName,
  type RoleGroup,
  type SliceSource,
} from './linear_source.js';
import type { ProblemList } from './load_problems.js';
import type { MatchedTensor, MatchResult } from './match.js';
import { type ParamSpec, segmentsOf } from './model_spec.js';
import { type BufferPlan, defaultMaxPieceBytes } from './pieces.js';
import { type QuantScheme, schemeEncoding, schemeExclude } from './quant_scheme.js';

export interface ParamPlan {
  spec: ParamSpec;
  ir: IrTensor<BufferPlan>;
  sources: MatchedTensor[];
  /** How the checkpoint stored it, for the report: 'BF16', 'NVFP4 per-expert slices', 'BF16 fused [E,K,N] (transposed)'. */
  layout: string;
  notes: string[];
}

export interface PlanOptions {
  maxPieceBytes?: number;
}

interface PendingFused {
  spec: ParamSpec;
  group: RoleGroup;
  sources: MatchedTensor[];
  candidates: Orientation[];
}

export function planParams(
  ck: Checkpoint,
  params: readonly ParamSpec[],
  scheme: QuantScheme,
  match: MatchResult,
  problems: ProblemList,
  opts: PlanOptions = {},
): ParamPlan[] {
  const build: BuildContext = { ck, maxPieceBytes: opts.maxPieceBytes ?? defaultMaxPieceBytes };
  const plans: ParamPlan[] = [];
  const pending: PendingFused[] = [];
  for (const spec of params) {
    const sources = match.byParam.get(spec.name) ?? [];
    const ctx: ClassifyContext = { param: spec.name, scheme, problems };
    if (sources.length === 0) {
      problems.add(
        'missing_param',
        spec.name,
        `parameter "${spec.name}" ${formatShape(spec.shape)} (${spec.kind}, ${spec.group}) is filled by no tensor`,
      );
      continue;
    }
    if (spec.kind === 'dense') {
      const plan = planDense(spec, sources, ctx, build);
      if (plan) plans.push(plan);
    } else if (spec.kind === 'linear') {
      const group = groupByRole(sources, ctx);
      const slice = group && classifySlice(group, spec.shape[0], spec.shape[1], ctx);
      if (slice && checkPolicy(spec, slice.encoding, moduleOf(slice.data.name), scheme, ctx)) {
        plans.push(
          finish(
            spec,
            buildFromSlices(spec.shape, [spec.shape[0]], [[slice]], build),
            sources,
            layoutText(slice.encoding, ''),
            scheme,
          ),
        );
      }
    } else {
      const fused = sources.filter((s) => s.slot.layout === 'fused_experts');
      if (fused.length > 0 && fused.length < sources.length) {
        problems.add(
          'format_conflict',
          spec.name,
          `parameter "${spec.name}" is filled both by fused tensors (${listNames(fused)}) and by per-expert slices (${listNames(sources.filter((s) => !fused.includes(s)))})`,
        );
        continue;
      }
      if (fused.length > 0) {
        const group = groupByRole(fused, ctx);
        if (group) pending.push({ spec, group, sources, candidates: fusedCandidates(spec, group, ctx) });
      } else {
        const plan = planExpertSlices(spec, sources, scheme, ctx, build);
        if (plan) plans.push(plan);
      }
    }
  }
  const orientation = decideOrientation(pending, problems);
  for (const p of pending) {
    const o = p.candidates.length === 1 ? p.candidates[0] : orientation;
    if (!o || !p.candidates.includes(o)) continue;
    const ctx: ClassifyContext = { param: p.spec.name, scheme, problems };
    const src = classifyFused(p.spec, p.group, o, ctx);
    if (!src || !checkPolicy(p.spec, src.encoding, moduleOf(src.data.name), scheme, ctx)) continue;
    const segs = segmentsOf(p.spec).map((s) => s.rows);
    const plan = finish(p.spec, buildFused(p.spec.shape, segs, src, build), p.sources, fusedLayoutText(src), scheme);
    if (p.candidates.length > 1)
      plan.notes.push(
        `square ${formatShape(src.data.shape)}: orientation ${o} taken from the checkpoint's other fused experts`,
      );
    plans.push(plan);
  }
  return plans;
}

function listNames(ms: readonly MatchedTensor[]): string {
  const names = ms.slice(0, 2).map((m) => `"${m.tensor.name}"`);
  return ms.length > 2 ? `${names.join(', ')}, ...` : names.join(', ');
}

/** Each role at most once; a second tensor for the same role is a duplicate naming both. */
function groupByRole(sources: readonly MatchedTensor[], ctx: ClassifyContext): RoleGroup | null {
  const group: RoleGroup = new Map();
  let ok = true;
  for (const m of sources) {
    const prev = group.get(m.slot.role);
    if (prev) {
      ctx.problems.add(
        'duplicate',
        ctx.param,
        `parameter "${ctx.param}" gets its ${m.slot.role} from both ${describeTensor(prev.tensor)} (rule ${prev.rule.name}) and ${describeTensor(m.tensor)} (rule ${m.rule.name})`,
      );
      ok = false;
    } else group.set(m.slot.role, m);
  }
  return ok ? group : null;
}

function planDense(
  spec: ParamSpec,
  sources: MatchedTensor[],
  ctx: ClassifyContext,
  build: BuildContext,
): ParamPlan | null {
  const group = groupByRole(sources, ctx);
  if (!group) return null;
  const data = group.get('data');
  const extra = sources.filter((s) => s.slot.role !== 'data');
  if (!data || extra.length) {
    for (const m of extra)
      ctx.problems.add(
        'unsupported',
        m.tensor.name,
        `${describeTensor(m.tensor)}: "${spec.name}" is kept BF16 and takes no quantization scales`,
      );
    return null;
  }
  const t = data.tensor;
  if (!isFloatDtype(t.dtype)) {
    ctx.problems.add(
      'dtype_mismatch',
      t.name,
      `${describeTensor(t)}: expected BF16, F16 or F32 for "${spec.name}" (kept BF16)`,
    );
    return null;
  }
  if (formatShape(t.shape) !== formatShape(spec.shape)) {
    ctx.problems.add(
      'shape_mismatch',
      t.name,
      `${describeTensor(t)}: expected ${formatShape(spec.shape)} for "${spec.name}"`,
    );
    return null;
  }
  const plan: ParamPlan = { spec, ir: buildDense(t, spec.shape, build), sources, layout: t.dtype, notes: [] };
  if (t.dtype !== 'BF16') plan.notes.push(`converted ${t.dtype} → BF16`);
  return plan;
}

/** Per-expert slices: every (expert, segment) cell present, all with one encoding. */
function planExpertSlices(
  spec: ParamSpec,
  sources: MatchedTensor[],
  scheme: QuantScheme,
  ctx: ClassifyContext,
  build: BuildContext,
): ParamPlan | null {
  const [E, , K] = spec.shape;
  const segments = segmentsOf(spec);
  const cells = new Map<string, MatchedTensor[]>();
  for (const m of sources) {
    const key = `${m.slot.expert}:${m.slot.segment}`;
    cells.set(key, [...(cells.get(key) ?? []), m]);
  }
  const grid: SliceSource[][] = [];
  let ok = true;
  for (let e = 0; e < E; e++) {
    const row: SliceSource[] = [];
    for (const seg of segments) {
      const list = cells.get(`${e}:${seg.name}`);
      if (!list) {
        ctx.problems.add(
          'missing_tensor',
          missingSliceName(sources, seg.name, e),
          `parameter "${spec.name}": expert ${e} has no ${seg.name} tensors (expected "${missingSliceName(sources, seg.name, e)}")`,
        );
        ok = false;
        continue;
      }
      const group = groupByRole(list, { ...ctx, param: `${spec.name} expert ${e} ${seg.name}` });
      const slice =
        group && classifySlice(group, seg.rows, K, { ...ctx, param: `${spec.name} expert ${e} ${seg.name}` });
      if (slice) row.push(slice);
      else ok = false;
    }
    grid.push(row);
  }
  if (!ok) return null;
  const first = grid[0][0];
  const odd = grid.flat().find((s) => s.encoding !== first.encoding || sliceDetail(s) !== sliceDetail(first));
  if (odd) {
    ctx.problems.add(
      'format_conflict',
      spec.name,
      `parameter "${spec.name}": ${describeTensor(first.data)} is ${sliceDetail(first)} but ${describeTensor(odd.data)} is ${sliceDetail(odd)}; one parameter needs one encoding`,
    );
    return null;
  }
  const partial = optionalScalesPartial(grid.flat());
  if (partial) {
    ctx.problems.add(
      'missing_scale',
      partial,
      `parameter "${spec.name}": some expert slices carry ${partial} and others do not`,
    );
    return null;
  }
  if (!checkPolicy(spec, first.encoding, moduleOf(first.data.name), scheme, ctx)) return null;
  const rule = sources[0].rule.name;
  return finish(
    spec,
    buildFromSlices(
      spec.shape,
      segments.map((s) => s.rows),
      grid,
      build,
    ),
    sources,
    layoutText(first.encoding, ` per-expert slices (${rule})`),
    scheme,
  );
}

function sliceDetail(s: SliceSource): string {
  if (s.encoding === 'fp8') return `FP8 ${s.granularity}-scaled`;
  return s.encoding === 'nvfp4' ? 'NVFP4' : 'BF16';
}

/** Optional scales (input scale, pre_quant_scale) must be on every slice or on none. */
function optionalScalesPartial(cells: SliceSource[]): string | null {
  const has = (f: (s: SliceSource) => boolean) => {
    const n = cells.filter(f).length;
    return n > 0 && n < cells.length;
  };
  if (has((s) => s.encoding !== 'bf16' && s.input !== null)) return 'input scales';
  if (has((s) => s.encoding === 'nvfp4' && s.preQuant !== null)) return 'pre_quant_scale';
  return null;
}

/** Names the tensor a missing expert slice would have, from a sibling of the same segment. */
function missingSliceName(sources: MatchedTensor[], segment: string, expert: number): string {
  const sib =
    sources.find((s) => s.slot.segment === segment && s.slot.role === 'data') ??
    sources.find((s) => s.slot.segment === segment);
  if (!sib) return `<${segment} of expert ${expert}>`;
  const suffix = sib.slot.role === 'data' ? (sib.fields.suffix ?? 'weight') : sib.slot.role;
  return expectedName({ ...sib, fields: { ...sib.fields, expert: String(expert) } }, suffix);
}

/** The checkpoint decides one orientation for all its fused experts; a square tensor follows the others. */
function decideOrientation(pending: PendingFused[], problems: ProblemList): Orientation | null {
  const decided = new Set(pending.filter((p) => p.candidates.length === 1).map((p) => p.candidates[0]));
  const ambiguous = pending.filter((p) => p.candidates.length > 1);
  if (decided.size > 1) {
    const show = (o: Orientation) => pending.find((p) => p.candidates.length === 1 && p.candidates[0] === o)!;
    problems.add(
      'format_conflict',
      show('kn').spec.name,
      `fused experts disagree on orientation: ${describeTensor(show('nk').group.get('data')!.tensor)} is [E, N, K] (x·Wᵀ) but ${describeTensor(show('kn').group.get('data')!.tensor)} is [E, K, N] (x·W)`,
    );
    return null;
  }
  if (decided.size === 0) {
    for (const p of ambiguous) {
      const t = p.group.get('data')!.tensor;
      problems.add(
        'orientation_ambiguous',
        t.name,
        `${describeTensor(t)}: parameter "${p.spec.name}" ${formatShape(p.spec.shape)} is square in N and K, so [E, N, K] (x·Wᵀ, transformers 5) and [E, K, N] (x·W, Hub release) look alike, and no other fused expert tensor decides`,
      );
    }
    return null;
  }
  return [...decided][0];
}

/**
 * The scheme must agree with what the tensors hold: no quantized tensor for a module the config excludes or a
 * parameter dawnllm keeps BF16; a BF16 weight the config meant to quantize is allowed but noted.
 */
function checkPolicy(
  spec: ParamSpec,
  encoding: IrFormat,
  module: string,
  scheme: QuantScheme,
  ctx: ClassifyContext,
): boolean {
  if (encoding === 'bf16') return true;
  if (!spec.isQuantizable) {
    ctx.problems.add(
      'unsupported',
      spec.name,
      `parameter "${spec.name}" is stored ${encoding.toUpperCase()} but dawnllm keeps it BF16 (${spec.group}); re-export with it excluded from quantization`,
    );
    return false;
  }
  const pattern = schemeExclude(scheme).match(module);
  if (pattern !== null) {
    ctx.problems.add(
      'format_conflict',
      spec.name,
      `parameter "${spec.name}" is stored ${encoding.toUpperCase()} but ${scheme.source} excludes module "${module}" (pattern "${pattern}")`,
    );
    return false;
  }
  return true;
}

function finish(
  spec: ParamSpec,
  ir: IrTensor<BufferPlan>,
  sources: MatchedTensor[],
  layout: string,
  scheme: QuantScheme,
): ParamPlan {
  const notes: string[] = [];
  if (ir.format === 'bf16' && spec.isQuantizable && schemeEncoding(scheme) !== null) {
    const module = moduleOf(sources.find((s) => s.slot.role === 'data')?.tensor.name ?? spec.name);
    const pattern = schemeExclude(scheme).match(module);
    notes.push(
      pattern
        ? `stays BF16: excluded by "${pattern}"`
        : `stays BF16 although ${scheme.source} does not exclude "${module}"`,
    );
  }
  const converted = [
    ...new Set(
      sources
        .filter((s) => s.slot.role === 'data' && s.tensor.dtype !== 'BF16' && ir.format === 'bf16')
        .map((s) => s.tensor.dtype),
    ),
  ];
  if (converted.length) notes.push(`converted ${converted.join(', ')} → BF16`);
  if (ir.format === 'nvfp4' && sources.some((s) => s.slot.role === 'weight_global_scale'))
    notes.push('global scale = 1 / weight_global_scale');
  if (ir.format === 'nvfp4' && ir.preQuantScale) notes.push('pre_quant_scale kept: kernel multiplies x by it');
  return { spec, ir, sources, layout, notes };
}

function layoutText(encoding: IrFormat, where: string): string {
  return `${encoding.toUpperCase()}${where}`;
}

function fusedLayoutText(src: FusedSource): string {
  const shape = src.orientation === 'nk' ? '[E, N, K]' : '[E, K, N] (transposed at load)';
  return `${src.encoding.toUpperCase()} fused ${shape}`;
}

/** A weight tensor's module path: its name without `.weight`/`.weight_packed` (fused tensors are their own module). */
export function moduleOf(tensorName: string): string {
  return tensorName.replace(/\.(weight|weight_packed)$/, '');
}

export function irBytes(ir: IrTensor<BufferPlan>): number {
  switch (ir.format) {
    case 'bf16':
      return ir.data.byteLength;
    case 'nvfp4':
      return (
        ir.packed.byteLength +
        ir.blockScale.byteLength +
        ir.globalScale.byteLength +
        (ir.inputScale?.byteLength ?? 0) +
        (ir.preQuantScale?.byteLength ?? 0)
      );
    case 'fp8':
      return ir.data.byteLength + ir.scaleData.byteLength + (ir.inputScale?.byteLength ?? 0);
  }
}

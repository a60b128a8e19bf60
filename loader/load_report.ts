// The load report: for every checkpoint tensor, the rule that consumed it (or the ignore rule and its reason);
// for every parameter, its IR format, layout and bytes; plus totals. `inspect` prints it; tests read it.
import type { CheckpointTensor } from './checkpoint.js';
import type { SafetensorsDtype } from './dtypes.js';
import type { IrFormat } from './ir.js';
import type { LoadPlan } from './load_plan.js';
import type { LoadProblem } from './load_problems.js';
import { irBytes } from './param_plan.js';
import { describeScheme } from './quant_scheme.js';

export interface TensorRecord {
  name: string;
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: number;
  /** The rule or ignore rule it hit; null when it matched none (then it is in `problems`). */
  rule: string | null;
  /** rejected: it hit a rule but its parameter has a problem. */
  status: 'consumed' | 'ignored' | 'rejected' | 'unmatched';
  param: string | null;
  reason: string | null;
}

export interface ParamRecord {
  name: string;
  group: string;
  kind: string;
  /** The model accepts it quantized; false for what dawnllm always keeps BF16 (norms, router, lm_head, vision). */
  isQuantizable: boolean;
  format: IrFormat;
  shape: number[];
  layout: string;
  irBytes: number;
  notes: string[];
  rules: string[];
}

export interface LoadReport {
  dir: string;
  architecture: string;
  format: string;
  formatSource: string;
  files: { name: string; bytes: number }[];
  tensors: TensorRecord[];
  params: ParamRecord[];
  problems: LoadProblem[];
  totals: {
    checkpointBytes: number;
    consumedBytes: number;
    ignoredBytes: number;
    irBytes: number;
    irBytesByFormat: Record<IrFormat, number>;
  };
}

export function buildLoadReport(plan: LoadPlan): LoadReport {
  const consumed = new Map<string, { rule: string; param: string }>();
  for (const p of plan.params)
    for (const s of p.sources) consumed.set(s.tensor.name, { rule: s.rule.name, param: p.spec.name });
  const ignored = new Map(plan.ignored.map((i) => [i.tensor.name, i.rule]));
  // Tensors that hit a rule but whose parameter failed (only looked up for the few not consumed).
  const matched = new Map<string, { rule: string; param: string }>();
  for (const [param, list] of plan.matches.byParam)
    for (const m of list) if (!consumed.has(m.tensor.name)) matched.set(m.tensor.name, { rule: m.rule.name, param });
  // One object shape for every record: checkpoints hold up to ~10^5 tensors.
  const record = (
    t: CheckpointTensor,
    rule: string | null,
    status: TensorRecord['status'],
    param: string | null,
    reason: string | null,
  ): TensorRecord => ({
    name: t.name,
    file: t.file.fileName,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.byteLength,
    rule,
    status,
    param,
    reason,
  });
  const tensors: TensorRecord[] = [];
  for (const t of plan.checkpoint.tensors.values()) {
    const c = consumed.get(t.name);
    const ig = ignored.get(t.name);
    const m = matched.get(t.name);
    if (c) tensors.push(record(t, c.rule, 'consumed', c.param, null));
    else if (ig) tensors.push(record(t, ig.name, 'ignored', null, ig.reason));
    else if (m) tensors.push(record(t, m.rule, 'rejected', m.param, 'its parameter has a problem'));
    else tensors.push(record(t, null, 'unmatched', null, null));
  }
  const params: ParamRecord[] = plan.params.map((p) => ({
    name: p.spec.name,
    group: p.spec.group,
    kind: p.spec.kind,
    isQuantizable: p.spec.isQuantizable,
    format: p.ir.format,
    shape: p.ir.shape,
    layout: p.layout,
    irBytes: irBytes(p.ir),
    notes: p.notes,
    rules: [...new Set(p.sources.map((s) => s.rule.name))],
  }));
  const byFormat: Record<IrFormat, number> = { bf16: 0, nvfp4: 0, fp8: 0 };
  for (const p of params) byFormat[p.format] += p.irBytes;
  const sum = (xs: TensorRecord[]) => xs.reduce((n, t) => n + t.bytes, 0);
  return {
    dir: plan.dir,
    architecture: plan.spec.architecture,
    format: describeScheme(plan.scheme),
    formatSource: plan.scheme.source,
    files: plan.checkpoint.files.map((f) => ({ name: f.fileName, bytes: f.fileBytes })),
    tensors,
    params,
    problems: plan.problems,
    totals: {
      checkpointBytes: sum(tensors),
      consumedBytes: sum(tensors.filter((t) => t.status === 'consumed')),
      ignoredBytes: sum(tensors.filter((t) => t.status === 'ignored')),
      irBytes: params.reduce((n, p) => n + p.irBytes, 0),
      irBytesByFormat: byFormat,
    },
  };
}

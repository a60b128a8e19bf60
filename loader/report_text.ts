// The load report as text (`dawnllm inspect`): the detected format, the rule each tensor hit (grouped, or every
// tensor with `verbose`), what was ignored and why, what stays BF16, and byte totals. Layer and expert indexes are
// folded into `*` so a 48-layer, 128-expert checkpoint still fits on a screen.
import { formatBytes } from '../core/format.js';
import { formatShape } from './dtypes.js';
import type { ParamRecord, TensorRecord } from './load_report.js';
import type { LoadReport } from './load_report.js';
import { summarizeProblems } from './load_problems.js';

/** `model.layers.3.mlp.experts.gate_proj.17.weight` → `model.layers.*.mlp.experts.gate_proj.*.weight`. */
export function namePattern(name: string): string {
  return name.replace(/\.\d+(?=\.|$)/g, '.*');
}

function table(rows: string[][], indent = '  '): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => indent + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '));
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return out;
}

const bytesOf = (ts: readonly TensorRecord[]) => ts.reduce((n, t) => n + t.bytes, 0);

export function formatLoadReport(r: LoadReport, opts: { verbose?: boolean } = {}): string {
  const out: string[] = [];
  const fileBytes = r.files.reduce((n, f) => n + f.bytes, 0);
  out.push(
    `checkpoint  ${r.dir}`,
    `files       ${r.files.length} safetensors file${r.files.length === 1 ? '' : 's'}, ${formatBytes(fileBytes)}`,
    `model       ${r.architecture}`,
    `format      ${r.format}, from ${r.formatSource}`,
    '',
  );
  out.push(...ruleSection(r), '');
  const ignored = r.tensors.filter((t) => t.status === 'ignored');
  if (ignored.length) out.push(...ignoredSection(ignored), '');
  const stray = r.tensors.filter((t) => t.status === 'unmatched' || t.status === 'rejected');
  if (stray.length) {
    out.push(`not loaded (${stray.length} tensors; see the problems below):`);
    out.push(
      ...table(stray.slice(0, 20).map((t) => [t.status, t.name, t.file, t.param ? `→ ${t.param}` : 'no rule'])),
      ...(stray.length > 20 ? [`  ... and ${stray.length - 20} more`] : []),
      '',
    );
  }
  out.push(...paramSection(r.params), '');
  out.push(...bf16Section(r.params), '');
  out.push(...totalsSection(r));
  if (opts.verbose) out.push('', ...tensorList(r));
  out.push('');
  if (r.problems.length)
    out.push(`PROBLEMS (${r.problems.length}); loading would stop here:`, `  ${summarizeProblems(r.problems)}`);
  else
    out.push(
      `OK: all ${r.tensors.length} tensors consumed or ignored by a named rule; ` +
        `all ${r.params.length} parameters filled once with the expected shape`,
    );
  return `${out.join('\n')}\n`;
}

function ruleSection(r: LoadReport): string[] {
  const hit = r.tensors.filter((t) => t.status !== 'ignored' && t.rule !== null);
  const byRule = [...countBy(hit, (t) => t.rule!)]
    .map(([rule, ts]) => ({ rule, ts, bytes: bytesOf(ts) }))
    .sort((a, b) => b.bytes - a.bytes);
  const rows = [['rule', 'tensors', 'bytes', 'dtypes', 'parameters', 'e.g.']];
  for (const { rule, ts, bytes } of byRule) {
    const dtypes = [...new Set(ts.map((t) => t.dtype))].join(',');
    const params = new Set(ts.map((t) => t.param)).size;
    rows.push([rule, String(ts.length), formatBytes(bytes), dtypes, String(params), largest(ts).name]);
  }
  return [`tensors by rule (${hit.length} of ${r.tensors.length} tensors):`, ...table(rows)];
}

function ignoredSection(ignored: TensorRecord[]): string[] {
  const out = [`ignored (${ignored.length} tensors, ${formatBytes(bytesOf(ignored))}):`];
  for (const [rule, ts] of countBy(ignored, (t) => t.rule ?? '?')) {
    out.push(`  ${rule}: ${ts.length} tensors, e.g. ${ts[0].name}`, `    reason: ${ts[0].reason}`);
  }
  return out;
}

function paramSection(params: ParamRecord[]): string[] {
  const rows = [['IR format', 'layout in the checkpoint', 'parameters', 'IR bytes', 'e.g.']];
  const byLayout = countBy(params, (p) => `${p.format}\u0000${p.layout}`);
  const sorted = [...byLayout].map(([, ps]) => ps).sort((a, b) => sumIr(b) - sumIr(a));
  for (const ps of sorted)
    rows.push([ps[0].format, ps[0].layout, String(ps.length), formatBytes(sumIr(ps)), namePattern(ps[0].name)]);
  const out = [`parameters (${params.length}):`, ...table(rows)];
  const notes = countBy(
    params.flatMap((p) => p.notes.filter((n) => !n.startsWith('stays BF16')).map((n) => ({ n, p }))),
    (x) => x.n,
  );
  for (const [note, xs] of notes) out.push(`  note: ${note} (${xs.length} parameters, e.g. ${xs[0].p.name})`);
  return out;
}

const sumIr = (ps: readonly ParamRecord[]) => ps.reduce((n, p) => n + p.irBytes, 0);

function bf16Reason(p: ParamRecord): string {
  const note = p.notes.find((n) => n.startsWith('stays BF16'));
  if (note) return note.replace(/^stays BF16:? ?/, '');
  return p.isQuantizable ? 'stored unquantized' : 'kept BF16 by the model (not quantizable)';
}

/** Linears one by one (folded by pattern): those are the interesting ones. Dense tensors as one line per group. */
function bf16Section(params: ParamRecord[]): string[] {
  const bf16 = params.filter((p) => p.format === 'bf16');
  const out = [`stays BF16 (${bf16.length} parameters, ${formatBytes(sumIr(bf16))}):`];
  const linears = bf16.filter((p) => p.kind !== 'dense');
  if (linears.length) {
    const rows = [['group', 'linear', 'count', 'IR bytes', 'why']];
    for (const [, ps] of countBy(linears, (p) => `${p.group}\u0000${namePattern(p.name)}`)) {
      const p = ps[0];
      rows.push([p.group, namePattern(p.name), `×${ps.length}`, formatBytes(sumIr(ps)), bf16Reason(p)]);
    }
    out.push(...table(rows));
  }
  for (const [group, ps] of countBy(
    bf16.filter((p) => p.kind === 'dense'),
    (p) => p.group,
  ))
    out.push(
      `  ${group}: ${ps.length} dense tensors (norms, embeddings, biases, convolutions), ${formatBytes(sumIr(ps))}, e.g. ${largest(ps).name}`,
    );
  return out;
}

function largest<T extends { irBytes?: number; bytes?: number }>(xs: readonly T[]): T {
  return xs.reduce((a, b) => ((b.irBytes ?? b.bytes ?? 0) > (a.irBytes ?? a.bytes ?? 0) ? b : a));
}

function totalsSection(r: LoadReport): string[] {
  const t = r.totals;
  const byFormat = Object.entries(t.irBytesByFormat)
    .filter(([, n]) => n > 0)
    .map(([f, n]) => `${f} ${formatBytes(n)}`)
    .join(', ');
  return [
    'bytes:',
    `  checkpoint tensors  ${formatBytes(t.checkpointBytes)}`,
    `  consumed            ${formatBytes(t.consumedBytes)}`,
    `  ignored             ${formatBytes(t.ignoredBytes)}`,
    `  IR (to upload)      ${formatBytes(t.irBytes)}${byFormat ? ` (${byFormat})` : ''}`,
  ];
}

function tensorList(r: LoadReport): string[] {
  const rows = r.tensors.map((t) => {
    const where =
      t.status === 'consumed'
        ? `${t.rule} → ${t.param}`
        : t.status === 'ignored'
          ? `ignored by ${t.rule}: ${t.reason}`
          : t.status === 'rejected'
            ? `${t.rule} → ${t.param} (rejected: ${t.reason})`
            : 'UNMATCHED';
    return [t.name, t.dtype, formatShape(t.shape), t.file, where];
  });
  return [
    `every tensor (${r.tensors.length}):`,
    ...table([['tensor', 'dtype', 'shape', 'file', 'rule → parameter'], ...rows]),
  ];
}

// `dawnllm inspect MODEL`: plans a load from the checkpoint's headers (no tensor data is read, no GPU is opened)
// and prints the load report: detected format, the rule each tensor hit, what stays BF16, and byte totals. A
// checkpoint that would not load prints the same report and then fails with the loader's error.
import { buildLoadReport } from '../loader/load_report.js';
import { planLoad } from '../loader/load_plan.js';
import { problemsError } from '../loader/load_problems.js';
import { formatLoadReport } from '../loader/report_text.js';
import { readQwen3VlMoeConfig } from '../models/qwen3_vl_moe/config.js';
import { qwen3VlMoeWeightSpec } from '../models/qwen3_vl_moe/weights.js';
import { type FlagSpec, formatHelp, parseArgs, UsageError } from './args.js';

const specs: FlagSpec[] = [
  { name: 'verbose', type: 'boolean', default: false, help: 'also list every tensor with its rule and parameter' },
  { name: 'json', type: 'boolean', default: false, help: 'print the load report as JSON' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export async function runInspect(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, specs);
  if (flags.help) {
    process.stdout.write(formatHelp('usage: dawnllm inspect MODEL_DIR [options]', specs));
    return 0;
  }
  if (positional.length !== 1)
    throw new UsageError(`inspect takes one checkpoint directory, got ${positional.length} arguments`);
  const dir = positional[0];
  // Qwen3-VL-MoE is the one architecture so far; its config parser names any other model_type.
  const spec = qwen3VlMoeWeightSpec(await readQwen3VlMoeConfig(dir));
  const plan = await planLoad(dir, spec);
  try {
    const report = buildLoadReport(plan);
    if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatLoadReport(report, { verbose: Boolean(flags.verbose) }));
    if (report.problems.length) throw problemsError(dir, spec.rulesFile, report.problems);
    return 0;
  } finally {
    await plan.checkpoint.close();
  }
}

// `dawnllm inspect` on the committed fixture (format, rule hits with counts, what stays BF16, byte totals; every
// tensor with --verbose; JSON) and on a synthetic checkpoint with a stray tensor, which prints the report and then
// fails through `main` with the loader's error naming the tensor.
import { describe, expect, it, vi } from 'vitest';
import { runInspect } from '../../cli/inspect.js';
import { main } from '../../cli/main.js';
import { formatBytes } from '../../core/format.js';
import type { LoadReport } from '../../loader/load_report.js';
import { namePattern } from '../../loader/report_text.js';
import { fixtureOrSkip } from '../loader/load_helpers.js';
import { makeTempDir, writeCheckpoint } from '../loader/safetensors_writer.js';
import { encoders, f32Tensor, modelOptHfQuantConfig, synthTensors, tinyConfig } from '../loader/synthetic_model.js';

const nvfp4Dir = fixtureOrSkip('qwen3vlmoe-tiny/nvfp4-modelopt');

async function capture(run: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await run();
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** The table row of `rule` split into columns. */
function ruleRow(stdout: string, rule: string): string[] {
  const line = stdout.split('\n').find((l) => l.trimStart().startsWith(`${rule} `));
  expect(line, `a row for rule ${rule}`).toBeDefined();
  return line!.trim().split(/\s{2,}/);
}

describe('namePattern', () => {
  it('folds layer and expert indexes', () => {
    expect(namePattern('model.layers.12.mlp.experts.gate_proj.117.weight_scale_2')).toBe(
      'model.layers.*.mlp.experts.gate_proj.*.weight_scale_2',
    );
    expect(namePattern('lm_head.weight')).toBe('lm_head.weight');
  });
});

describe.skipIf(!nvfp4Dir)('dawnllm inspect on the nvfp4-modelopt fixture', () => {
  it('prints format, rule hits, BF16 parameters and totals', async () => {
    const { code, stdout } = await capture(() => runInspect([nvfp4Dir!]));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^format {6}ModelOpt NVFP4 \(quant_algo NVFP4, group 16.*\), from hf_quant_config\.json$/m);
    expect(stdout).toContain('files       2 safetensors files');
    // 4 layers × 8 experts × 3 projections × 4 tensors (weight, weight_scale, weight_scale_2, input_scale)
    expect(ruleRow(stdout, 'experts_proj_first').slice(1, 5)).toEqual(['384', '648.8 KiB', 'F32,F8_E4M3,U8', '8']);
    expect(ruleRow(stdout, 'text_attn_proj').slice(1, 2)).toEqual(['64']);
    expect(ruleRow(stdout, 'text_router').slice(1, 2)).toEqual(['4']);
    expect(stdout).toContain('tensors by rule (528 of 528 tensors)');
    expect(stdout).toMatch(/nvfp4 +NVFP4 per-expert slices \(experts_proj_first\) +8 /);
    // what stays BF16: the router, lm_head and the vision linears, then the dense tensors per group
    expect(stdout).toMatch(/stays BF16 \(80 parameters, /);
    expect(stdout).toMatch(/text +model\.language_model\.layers\.\*\.mlp\.gate\.weight +×4 +8\.00 KiB +kept BF16/);
    expect(stdout).toMatch(/text +lm_head\.weight +×1 /);
    expect(stdout).toMatch(/vision +model\.visual\.blocks\.\*\.attn\.qkv\.weight +×3 /);
    expect(stdout).toMatch(/ {2}text: 18 dense tensors/);
    expect(stdout).toMatch(/IR \(to upload\) +2\.70 MiB \(bf16 1\.96 MiB, nvfp4 756\.9 KiB\)/);
    expect(stdout).toMatch(/OK: all 528 tensors consumed or ignored by a named rule; all 104 parameters filled once/);
    expect(stdout).not.toContain('every tensor (');
  });

  it('--verbose lists every tensor with its rule and parameter; --json prints the report', async () => {
    const { stdout } = await capture(() => runInspect([nvfp4Dir!, '--verbose']));
    const name = 'model.language_model.layers.2.mlp.experts.up_proj.5.weight_scale_2';
    expect(stdout).toMatch(
      new RegExp(
        `${name.replace(/\./g, '\\.')} +F32 +\\[\\] +model-0000\\d-of-00002\\.safetensors +experts_proj_first → model\\.language_model\\.layers\\.2\\.mlp\\.experts\\.gate_up_proj`,
      ),
    );
    expect(stdout.split('\n').filter((l) => / → model\.|lm_head → /.test(l))).toHaveLength(528);
    const json = await capture(() => runInspect(['--json', nvfp4Dir!]));
    const report = JSON.parse(json.stdout) as LoadReport;
    expect(report.tensors).toHaveLength(528);
    expect(formatBytes(report.totals.irBytesByFormat.nvfp4)).toBe('756.9 KiB');
  });
});

describe('dawnllm inspect on a broken checkpoint', () => {
  it('prints the report (ignored tensors with reasons), then fails naming the stray tensor and its file', async () => {
    const config = tinyConfig();
    const stray = 'model.language_model.layers.1.mlp.shared_expert.weight';
    const tensors = [
      ...synthTensors(config, { encoder: encoders.nvfp4ModelOpt, experts: 'proj_first' }),
      f32Tensor(stray, [4]),
      f32Tensor('model.language_model.layers.0.self_attn.k_proj.k_scale', []),
    ];
    const dir = await writeCheckpoint(await makeTempDir(), {
      config,
      hfQuantConfig: modelOptHfQuantConfig('NVFP4'),
      tensors,
      numShards: 1,
    });
    const { code, stdout, stderr } = await capture(() => main(['inspect', dir]));
    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`unmatched +${stray.replace(/\./g, '\\.')} +model\\.safetensors +no rule`));
    expect(stdout).toMatch(/PROBLEMS \(1\); loading would stop here:/);
    expect(stdout).toMatch(
      /ignored \(1 tensors, 4 B\):\n {2}kv_cache_scales: 1 tensors, e\.g\. .*k_proj\.k_scale\n {4}reason: FP8 KV-cache/,
    );
    expect(stderr).toMatch(/^dawnllm inspect: loader: checkpoint .* does not map onto the model \(1 problems/);
    expect(stderr).toContain(`tensor "${stray}" (model.safetensors) matched no rule in models/qwen3_vl_moe/weights.ts`);
  });

  it('rejects a missing directory and extra arguments', async () => {
    const missing = await capture(() => main(['inspect', '/nonexistent/model']));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read \/nonexistent\/model\/config\.json/);
    const usage = await capture(() => main(['inspect', 'a', 'b']));
    expect(usage.stderr).toMatch(/inspect takes one checkpoint directory, got 2 arguments/);
  });
});

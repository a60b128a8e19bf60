// Decode GEMV benchmark (kernels/matvec.wgsl) on the Qwen3-VL-30B-A3B shapes, M = 1:
//   dense:   q_proj 4096×2048, k/v 512×2048, o 2048×4096 in nvfp4 / fp8 / bf16; lm_head 151936×2048 in bf16 (and
//            nvfp4, for the GEMV target)
//   grouped: 8 of 128 experts for one token: fused gate_up [128, 2·768, 2048] with the silu_mul epilogue (x = the
//            token row), down [128, 2048, 768] (x = one row per entry, as gate_up wrote them)
// Each line: time, effective GB/s (packed weights + scales of the experts read, activations and outputs) and its
// fraction of the stream-read peak measured in this run, TFLOP/s (2·M·N·K). Targets on the H100 (docs/KERNELS.md):
// NVFP4 GEMV ≥ 85% of the stream peak (q_proj, lm_head), grouped expert GEMV ≥ 70%. NVFP4 q_proj also runs with
// the rmsNorm prologue (the decode qkv projection normalizing x itself): its cost over the plain line.
//   npx tsx bench/kernels/matvec.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --quick: smaller stand-in shapes (hidden 512, 16 experts) that run on lavapipe in well under a minute.
// --sweep: also times NVFP4 q_proj, lm_head and the experts over a grid of work splits (rows, tpk, rowGroups) and
// both decodes, for tuning on the GPU; the default split of each line is printed as split=r<rows>t<tpk>g<groups>.
// Dense weights rotate over copies larger than the last-level cache; grouped cases rotate over disjoint expert
// sets (every repetition reads 8 experts no earlier repetition of the cycle read).
import { createBuffer, createBufferFrom, readF32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { type Dispatch, runDispatches } from '../../kernels/gpu/dispatch.js';
import { KernelError } from '../../core/errors.js';
import { Matvec, type MatvecVariant, matvecVariantFor } from '../../kernels/matvec.js';
import type { MatvecTuning } from '../../kernels/matvec_tuning.js';
import { destroyWeight, uploadHostWeight } from '../../kernels/reference/matvec_weights.js';
import { rmsNormRef } from '../../kernels/reference/rms_norm.js';
import {
  type BenchArgs,
  BenchRunner,
  measureStreamPeak,
  openBenchGpu,
  parseBenchArgs,
  rotationCopies,
  sampleIndices,
} from './harness.js';
import {
  checkSamples,
  denseShapes,
  destroyCopies,
  expertBytes,
  expertShapes,
  formatsFor,
  type LinearShape,
  makeWeight,
  randomUniform,
  type Sample,
  uploadCopies,
} from './lib/matmul_bench.js';

/** A work split to try (--sweep); undefined fields take the defaults. */
interface Split {
  tuning?: MatvecTuning;
  f16Decode?: boolean;
  rmsNorm?: boolean;
}

const splitLabel = (t: MatvecTuning) => `r${t.rows}t${t.tpk}g${t.rowGroups}`;

/** Builds the kernel, or prints why this split cannot run here and returns null. */
async function createOrSkip(gpu: Gpu, v: MatvecVariant, what: string): Promise<Matvec | null> {
  try {
    return await Matvec.create(gpu, v);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    console.log(`skip ${what}: ${e.message}`);
    return null;
  }
}

async function denseCase(
  runner: BenchRunner,
  s: LinearShape,
  format: 'nvfp4' | 'fp8' | 'bf16',
  args: BenchArgs,
  split: Split = {},
) {
  const gpu = runner.gpu;
  const M = 1;
  const name = `matvec_${format}_f32_f32${split.rmsNorm ? '_rmsnorm' : ''}`;
  const shape: Record<string, string | number> = { layer: s.name, M, N: s.N, K: s.K };
  if (runner.skips({ name, shape })) return;
  const host = makeWeight(format, 1, s);
  const wBytes = expertBytes(host);
  const copies = args.quick ? rotationCopies(wBytes, 8 << 20, 32 << 20) : rotationCopies(wBytes, 256 << 20, 2 << 30);
  const weights = uploadCopies(gpu, host, s.name, copies);
  const variant = matvecVariantFor(gpu, weights[0], { act: 'f32', out: 'f32', ...split });
  shape.split = splitLabel(variant.tuning!);
  const kernel = await createOrSkip(gpu, variant, `${name} ${s.name} ${shape.split}`);
  if (!kernel || runner.skips({ name: kernel.name, shape })) {
    destroyCopies(weights);
    return;
  }
  const x = randomUniform(M * s.K, s.N);
  const xBuf = createBufferFrom(gpu, 'x', x);
  const out = createBuffer(gpu, 'out', M * s.N * 4);
  // rmsNorm: weight in [0.5, 1.5]; the check compares against the normed x (f64 norm, rounded to f32)
  const eps = 1e-6;
  const normW = split.rmsNorm ? randomUniform(s.K, s.K + 1).map((v) => 1 + v / 2) : undefined;
  const normBuf = normW ? createBufferFrom(gpu, 'norm_w', normW) : undefined;
  const xRef = normW ? Float32Array.from(rmsNormRef(x, normW, M, s.K, eps)) : x;
  const dispatches: Dispatch[] = weights.map((weight) =>
    kernel.bind({ x: xBuf, weight, out, normWeight: normBuf }, { M, eps }),
  );
  try {
    await runner.run({
      name: kernel.name,
      shape,
      bytes: wBytes + M * s.K * 4 + M * s.N * 4 + (normW ? s.K * 4 : 0),
      flops: 2 * M * s.N * s.K,
      async check() {
        await runDispatches(gpu, [dispatches[0]], 'check');
        const y = await readF32(gpu, out);
        const samples: Sample[] = sampleIndices(s.N, 64).map((col) => ({ row: 0, col, e: 0, xRow: 0 }));
        return checkSamples((p) => y[p.row * s.N + p.col], host, xRef, samples, {});
      },
      encode(pass, rep) {
        dispatches[rep % dispatches.length].encode(pass);
      },
    });
  } finally {
    destroyCopies(weights);
    xBuf.destroy();
    out.destroy();
    normBuf?.destroy();
  }
}

/** One token's 8 experts through gate_up (silu_mul) or down; repetitions cycle over disjoint expert sets. */
async function groupedCase(
  runner: BenchRunner,
  which: 'gateUp' | 'down',
  format: 'nvfp4' | 'fp8',
  quick: boolean,
  split: Split = {},
) {
  const gpu = runner.gpu;
  const ex = expertShapes(quick);
  const s = ex[which];
  const E = ex.numExperts;
  const A = ex.active;
  const silu = which === 'gateUp';
  const name = `matvec_grouped_${format}_f32_f32${silu ? '_silu_mul' : ''}`;
  const shape: Record<string, string | number> = { layer: s.name, experts: `${A}/${E}`, M: A, N: s.N, K: s.K };
  if (runner.skips({ name, shape })) return;
  const host = makeWeight(format, E, s);
  const weight = uploadHostWeight(gpu, host, s.name);
  const sets = Math.floor(E / A);
  // set r: experts r, r + sets, r + 2·sets, ... (spread over the stack)
  const expertsOf = (r: number) => Array.from({ length: A }, (_, j) => r + j * sets);
  const variant = matvecVariantFor(gpu, weight, {
    act: 'f32',
    out: 'f32',
    grouped: true,
    mTile: 1,
    numTiles: A,
    epilogue: silu ? 'silu_mul' : 'none',
    ...split,
  });
  shape.split = splitLabel(variant.tuning!);
  const kernel = await createOrSkip(gpu, variant, `${name} ${s.name} ${shape.split}`);
  if (!kernel || runner.skips({ name: kernel.name, shape })) {
    destroyWeight(weight);
    return;
  }
  const nOut = kernel.outColumns(weight);
  const xRows = silu ? 1 : A; // gate_up reads the token's row; down reads one row per entry
  const x = randomUniform(xRows * s.K, s.N + 1);
  const xBuf = createBufferFrom(gpu, 'x', x);
  const out = createBuffer(gpu, 'out', A * nOut * 4);
  const rows = Uint32Array.from({ length: A }, (_, p) => (silu ? 0 : p));
  const entryRows = createBufferFrom(gpu, 'entry_rows', rows);
  const tileBufs = Array.from({ length: sets }, (_, r) =>
    createBufferFrom(gpu, 'tile_experts', Uint32Array.from(expertsOf(r))),
  );
  const dispatches = tileBufs.map((tileExperts) =>
    kernel.bind({ x: xBuf, weight, out, tileExperts, entryRows }, { M: A, numXRows: xRows }),
  );
  try {
    await runner.run({
      name: kernel.name,
      shape,
      bytes: A * expertBytes(host) + xRows * s.K * 4 + A * nOut * 4,
      flops: 2 * A * s.N * s.K,
      async check() {
        await runDispatches(gpu, [dispatches[0]], 'check');
        const y = await readF32(gpu, out);
        const experts = expertsOf(0);
        const samples: Sample[] = [];
        for (let p = 0; p < A; p++)
          for (const col of sampleIndices(nOut, 16, p + 1)) samples.push({ row: p, col, e: experts[p], xRow: rows[p] });
        return checkSamples((q) => y[q.row * nOut + q.col], host, x, samples, { silu });
      },
      encode(pass, rep) {
        dispatches[rep % dispatches.length].encode(pass);
      },
    });
  } finally {
    destroyWeight(weight);
    for (const b of [xBuf, out, entryRows, ...tileBufs]) b.destroy();
  }
}

/**
 * --sweep grid: threads along K (from the subgroup size up), rows per thread, row groups, both decodes. Splits the
 * device cannot run are printed as skipped.
 */
function sweepSplits(gpu: Gpu, quick: boolean): Split[] {
  const sg = gpu.caps.hasSubgroups ? Math.max(1, gpu.caps.subgroupMaxSize) : 8;
  const tpks = [...new Set([sg, 2 * sg, 32, 64])].filter((t) => t >= sg && t <= 128).sort((a, b) => a - b);
  const out: Split[] = [];
  for (const tpk of quick ? tpks.slice(0, 2) : tpks)
    for (const rows of quick ? [2, 4] : [1, 2, 4, 8])
      for (const rowGroups of quick ? [2, 4] : [1, 2, 4, 8])
        for (const f16Decode of gpu.caps.hasF16 ? [true, false] : [false])
          out.push({ tuning: { rows, tpk, rowGroups }, f16Decode });
  return out;
}

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
for (const s of denseShapes(args.quick)) {
  if (args.skipLarge && s.name === 'lm_head') continue;
  for (const format of formatsFor(s)) await denseCase(runner, s, format as 'nvfp4' | 'fp8' | 'bf16', args);
  if (s.name === 'q_proj') await denseCase(runner, s, 'nvfp4', args, { rmsNorm: true });
}
for (const which of ['gateUp', 'down'] as const)
  for (const format of ['nvfp4', 'fp8'] as const) await groupedCase(runner, which, format, args.quick);
if (args.sweep) {
  // the GEMV targets: NVFP4 q_proj and lm_head at M = 1, the NVFP4 experts
  console.log('sweep: nvfp4 work splits (rows r, threads along K t, row groups g)');
  for (const split of sweepSplits(gpu, args.quick)) {
    for (const s of denseShapes(args.quick))
      if (s.name === 'q_proj' || (s.name === 'lm_head' && !args.skipLarge))
        await denseCase(runner, s, 'nvfp4', args, split);
    for (const which of ['gateUp', 'down'] as const) await groupedCase(runner, which, 'nvfp4', args.quick, split);
  }
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

// Prefill GEMM benchmark (kernels/matmul_gemm*.wgsl) on the Qwen3-VL-30B-A3B shapes at M = 512 tokens:
//   dense:   q_proj 4096×2048, k/v 512×2048, o 2048×4096 in nvfp4 / fp8 / bf16
//   grouped: 512 tokens × top-8 of 128 experts routed by MoeAlign (random ids, on the device, not timed): fused
//            gate_up [128, 2·768, 2048] reading token rows, down [128, 2048, 768] reading one row per pair with the
//            routing weights applied; and MoeAlign itself
// Path: tensor cores (subgroup matrix, f16 operands, f32 accumulation) where the adapter has them, else the tiled
// f32 kernel (lavapipe). Each line: time, effective GB/s (packed weights + scales of the experts used, x, y) and its
// fraction of the stream-read peak of this run, TFLOP/s (2·rows·N·K). H100 target (docs/KERNELS.md): NVFP4 GEMM at
// M = 512 ≥ 100 TFLOP/s with subgroup matrices.
//   npx tsx bench/kernels/matmul_gemm.ts [--quick] [--filter RE] [--json PATH] [--reps N]
// --sweep: also times NVFP4 q_proj and the experts' gate_up over a grid of tiles (subgroupTile sgRows × sgCols × k
// on tensor cores, tile m × n × k on the tiled path); every line prints its tile as tile=<M>x<N>k<K>.
// --quick: M = 32 tokens and the smaller stand-in shapes (hidden 512, 16 experts) that run on lavapipe in well
// under a minute.
import { createBuffer, createBufferFrom, readBuffer, readF32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { type Dispatch, runDispatches } from '../../kernels/gpu/dispatch.js';
import { KernelError } from '../../core/errors.js';
import { MatmulGemm, type MatmulGemmVariant, subgroupMatrixUnavailable } from '../../kernels/matmul_gemm.js';
import { createMoeRouting, MoeAlign } from '../../kernels/moe_align.js';
import { destroyWeight, uploadHostWeight } from '../../kernels/reference/matvec_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
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

/** Tile knobs to try (--sweep); empty = the defaults. */
type Tiling = Pick<MatmulGemmVariant, 'tile' | 'subgroupTile'>;

/** Builds the kernel, or prints why this tiling cannot run here and returns null. */
async function createOrSkip(gpu: Gpu, v: MatmulGemmVariant): Promise<MatmulGemm | null> {
  try {
    return await MatmulGemm.create(gpu, v);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    console.log(`skip ${JSON.stringify(v.tile ?? v.subgroupTile)}: ${e.message}`);
    return null;
  }
}

/** `64x128k32`: the output tile and the k step (what the line's numbers depend on). */
function tileLabel(k: MatmulGemm, t: Tiling): string {
  const kStep = k.path === 'tiled' ? (t.tile?.k ?? 16) : (t.subgroupTile?.k ?? 32);
  return `${k.tileM}x${k.tileN}k${kStep}`;
}

async function denseCase(
  runner: BenchRunner,
  s: LinearShape,
  format: WeightFormat,
  M: number,
  args: BenchArgs,
  tiling: Tiling = {},
) {
  const gpu = runner.gpu;
  const kernel = await createOrSkip(gpu, { format, ...tiling });
  if (!kernel) return;
  const shape = { layer: s.name, M, N: s.N, K: s.K, tile: tileLabel(kernel, tiling) };
  if (runner.skips({ name: kernel.name, shape })) return;
  const host = makeWeight(format, 1, s);
  const wBytes = expertBytes(host);
  const copies = args.quick ? rotationCopies(wBytes, 8 << 20, 32 << 20) : rotationCopies(wBytes, 128 << 20, 1 << 30);
  const weights = uploadCopies(gpu, host, s.name, copies);
  const x = randomUniform(M * s.K, s.N);
  const xBuf = createBufferFrom(gpu, 'x', x);
  const y = createBuffer(gpu, 'y', M * s.N * 4);
  const dispatches: Dispatch[] = weights.map((weight) => kernel.bind({ x: xBuf, weight, y }, { M }));
  try {
    await runner.run({
      name: kernel.name,
      shape,
      bytes: wBytes + M * s.K * 4 + M * s.N * 4,
      flops: 2 * M * s.N * s.K,
      async check() {
        await runDispatches(gpu, [dispatches[0]], 'check');
        const out = await readF32(gpu, y);
        const samples: Sample[] = [];
        for (const row of sampleIndices(M, 4))
          for (const col of sampleIndices(s.N, 16, row + 1)) samples.push({ row, col, e: 0, xRow: row });
        return checkSamples((p) => out[p.row * s.N + p.col], host, x, samples, {
          f16Operands: kernel.path !== 'tiled',
        });
      },
      encode(pass, rep) {
        dispatches[rep % dispatches.length].encode(pass);
      },
    });
  } finally {
    destroyCopies(weights);
    xBuf.destroy();
    y.destroy();
  }
}

/** Top-8 distinct experts per token, uniformly random (every expert gets tokens at M = 512). */
function routerIds(tokens: number, topk: number, E: number, seed: number): Uint32Array {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const ids = new Uint32Array(tokens * topk);
  for (let t = 0; t < tokens; t++) {
    const pool = Array.from({ length: E }, (_, i) => i);
    for (let j = 0; j < topk; j++) {
      const i = j + (next() % (E - j));
      [pool[j], pool[i]] = [pool[i], pool[j]];
      ids[t * topk + j] = pool[j];
    }
  }
  return ids;
}

async function groupedCases(
  runner: BenchRunner,
  format: WeightFormat,
  tokens: number,
  quick: boolean,
  tiling: Tiling = {},
  only?: 'gateUp',
) {
  const gpu = runner.gpu;
  const ex = expertShapes(quick);
  const E = ex.numExperts;
  const topk = ex.active;
  const pairs = tokens * topk;
  const ids = routerIds(tokens, topk, E, 7);
  const used = new Set(ids).size;
  const align = await MoeAlign.create(gpu);
  const idsBuf = createBufferFrom(gpu, 'topk_ids', ids);
  for (const which of only ? [only] : (['gateUp', 'down'] as const)) {
    const s = ex[which];
    const down = which === 'down';
    const kernel = await createOrSkip(gpu, { format, grouped: true, routeWeights: down, ...tiling });
    if (!kernel) continue;
    const shape = {
      layer: s.name,
      experts: `${topk}/${E}`,
      tokens,
      pairs,
      N: s.N,
      K: s.K,
      tile: tileLabel(kernel, tiling),
    };
    if (runner.skips({ name: kernel.name, shape })) continue;
    const host = makeWeight(format, E, s);
    const weight = uploadHostWeight(gpu, host, s.name);
    const routing = createMoeRouting(gpu, `${s.name}/routing`, {
      maxPairs: pairs,
      numExperts: E,
      blockM: kernel.tileM,
      gridN: [kernel.gridN(s.N)],
    });
    const alignD = align.bind(idsBuf, routing, pairs);
    const xRowDiv = down ? 1 : topk; // gate_up reads token rows; down reads the rows gate_up wrote per pair
    const xRows = pairs / xRowDiv;
    const x = randomUniform(xRows * s.K, s.N + 3);
    const xBuf = createBufferFrom(gpu, 'x', x);
    const rw = randomUniform(pairs, 11, 0.05, 0.3);
    const rwBuf = down ? createBufferFrom(gpu, 'route_weights', rw) : undefined;
    const y = createBuffer(gpu, 'y', pairs * s.N * 4);
    const gemm = kernel.bindGrouped({ x: xBuf, weight, y, routing, routeWeights: rwBuf }, { xRowDiv, consumer: 0 });
    try {
      await runDispatches(gpu, [alignD], 'moe_align');
      await runner.run({
        name: kernel.name,
        shape,
        bytes: used * expertBytes(host) + xRows * s.K * 4 + pairs * s.N * 4,
        flops: 2 * pairs * s.N * s.K,
        async check() {
          await runDispatches(gpu, [gemm], 'check');
          const out = await readF32(gpu, y);
          const samples: Sample[] = [];
          for (const p of sampleIndices(pairs, 6))
            for (const col of sampleIndices(s.N, 12, p + 1))
              samples.push({ row: p, col, e: ids[p], xRow: Math.floor(p / xRowDiv) });
          return checkSamples((q) => out[q.row * s.N + q.col], host, x, samples, {
            f16Operands: kernel.path !== 'tiled',
            scale: down ? (q) => rw[q.row] : undefined,
          });
        },
        encode(pass) {
          gemm.encode(pass);
        },
      });
      if (which === 'gateUp' && format === 'nvfp4' && !only)
        await runner.run({
          name: align.name,
          shape: { experts: E, pairs, blockM: kernel.tileM },
          bytes: pairs * 4 * 3,
          flops: 0,
          async check() {
            const counts = new Uint32Array(await readBuffer(gpu, routing.counts));
            const want = new Uint32Array(E);
            for (const e of ids) want[e]++;
            const bad = want.findIndex((c, e) => c !== counts[e]);
            return bad < 0
              ? { ok: true, message: 'per-expert counts match' }
              : { ok: false, message: `expert ${bad}: ${counts[bad]} pairs, expected ${want[bad]}` };
          },
          encode(pass) {
            alignD.encode(pass);
          },
        });
    } finally {
      destroyWeight(weight);
      for (const b of [xBuf, rwBuf, y, routing.routing, routing.counts, routing.expertOffsets, routing.dispatchArgs])
        b?.destroy();
    }
  }
  idsBuf.destroy();
}

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const runner = new BenchRunner(gpu, args, peak);
const M = args.quick ? 32 : 512;
for (const s of denseShapes(args.quick)) {
  if (s.name === 'lm_head') continue; // prefill runs the LM head on the last token only: a GEMV
  for (const format of formatsFor(s)) await denseCase(runner, s, format, M, args);
}
for (const format of ['nvfp4', 'fp8'] as const) await groupedCases(runner, format, M, args.quick);
if (args.sweep) {
  // the GEMM target: NVFP4 at M tokens, q_proj and the experts' gate_up, over a grid of tiles of the path in use
  const matrix = subgroupMatrixUnavailable(gpu.caps) === null;
  const grid: Tiling[] = [];
  if (matrix) {
    for (const sgRows of [1, 2, 4])
      for (const sgCols of [1, 2, 4]) for (const k of [32, 64]) grid.push({ subgroupTile: { sgRows, sgCols, k } });
  } else {
    const sizes = args.quick ? [32, 64] : [32, 64, 128];
    for (const m of sizes)
      for (const n of sizes) for (const k of args.quick ? [16] : [16, 32]) grid.push({ tile: { m, n, k } });
  }
  console.log(`sweep: nvfp4 ${matrix ? 'subgroup-matrix' : 'tiled'} GEMM tiles`);
  const q = denseShapes(args.quick).find((s) => s.name === 'q_proj')!;
  for (const tiling of grid) {
    await denseCase(runner, q, 'nvfp4', M, args, tiling);
    await groupedCases(runner, 'nvfp4', M, args.quick, tiling, 'gateUp');
  }
}
const code = runner.finish();
gpu.destroy();
process.exit(code);

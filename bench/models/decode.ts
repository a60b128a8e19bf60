// Decode speed of the Qwen3-VL-MoE GPU model (models/qwen3_vl_moe/model.ts) as the engine drives it: prefill a
// context (512 random tokens by default) per sequence, then time N greedy decode steps with GPU sampling (only the
// token ids come back), at batch 1 or each of --batch B1,B2,... on the same loaded model. Printed:
//   - wall-clock ms per step and tok/s (submit + GPU + token read-back, what a client sees minus HTTP);
//   - the GPU time of one decode step's recorded commands replayed in one pass (timestamp queries where the adapter
//     has them, else wall clock) and the tok/s it implies;
//   - dispatches per step (all of the step's pass: embedding, layers, head, sampler) and by pipeline;
//   - bytes read per step (weights actually touched: embedding row, norms, attention, router, the top-k experts'
//     packed NVFP4 bytes and block scales — at batch B the expected number of distinct experts — lm_head, and the KV
//     cache read at the context length), the roofline tok/s those bytes allow at the stream-read peak measured in
//     the same run (kernels/stream_read.wgsl via bench/kernels/harness.ts), and the fraction achieved;
//   - the residual stream's RMS after the embedding and the layers (random weights must keep it finite).
//   npx tsx bench/models/decode.ts [MODEL_DIR] [--context 512] [--steps 64] [--warmup 4] [--batch 1[,8,...]]
//     [--kv-dtype bf16|fp8] [--json PATH] [--quick]
// Without MODEL_DIR it generates `tools/make_synthetic_checkpoint.ts --preset small` into a temporary directory.
// --quick: context 64, 8 steps, the small stream-peak buffer (lavapipe).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Gpu } from '../../kernels/gpu/device.js';
import { timeDispatches } from '../../kernels/gpu/timing.js';
import { KV_BLOCK_SIZE, type KvDtype, kvBytesPerElement } from '../../kernels/kv_cache.js';
import { greedySampleRow, type SampleRow } from '../../kernels/sampling.js';
import { type WeightFormat, weightBytesPerExpert } from '../../kernels/weight_format.js';
import type { Qwen3VlMoeTextConfig } from '../../models/qwen3_vl_moe/config.js';
import { Qwen3VlMoeModel, type SeqStep } from '../../models/qwen3_vl_moe/model.js';
import { makeSyntheticCheckpoint } from '../../tools/make_synthetic_checkpoint.js';
import { presets } from '../../tools/synthetic/spec.js';
import { type BenchArgs, measureStreamPeak, openBenchGpu, type StreamPeak } from '../kernels/harness.js';

interface DecodeArgs {
  dir: string | null;
  context: number;
  steps: number;
  warmup: number;
  /** Batch sizes measured one after another on the same loaded model. */
  batches: number[];
  kvDtype: KvDtype;
  json: string | null;
  quick: boolean;
}

function parseArgs(argv: string[]): DecodeArgs {
  const quick = argv.includes('--quick');
  const a: DecodeArgs = {
    dir: null,
    context: quick ? 64 : 512,
    steps: quick ? 8 : 64,
    warmup: quick ? 2 : 4,
    batches: [1],
    kvDtype: 'bf16',
    json: null,
    quick,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`decode bench: ${f} needs a value`);
      return v;
    };
    const int = () => {
      const n = Number(value());
      if (!(Number.isInteger(n) && n >= 1)) throw new Error(`decode bench: ${f} needs a positive integer`);
      return n;
    };
    if (f === '--quick') continue;
    else if (f === '--context') a.context = int();
    else if (f === '--steps') a.steps = int();
    else if (f === '--warmup') a.warmup = int();
    else if (f === '--batch') {
      const v = value();
      a.batches = v.split(',').map(Number);
      if (!a.batches.every((b) => Number.isInteger(b) && b >= 1))
        throw new Error(`decode bench: --batch ${v}: expected positive integers like 1,8,32`);
    } else if (f === '--json') a.json = value();
    else if (f === '--kv-dtype') {
      const v = value();
      if (v === 'bf16' || v === 'auto') a.kvDtype = 'bf16';
      else if (v === 'fp8' || v === 'fp8e4m3') a.kvDtype = 'fp8e4m3';
      else throw new Error(`decode bench: --kv-dtype ${v}: expected bf16 or fp8`);
    } else if (f.startsWith('--'))
      throw new Error(
        `decode bench: unknown flag ${f} (known: --context --steps --warmup --batch --kv-dtype --json --quick)`,
      );
    else if (a.dir === null) a.dir = f;
    else throw new Error(`decode bench: one model directory expected, got ${a.dir} and ${f}`);
  }
  return a;
}

/** Seeded token ids below `vocab` (LCG; the values only pick embedding rows). */
function randomTokens(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

/** One sequence in its own run of KV blocks. */
class Seq {
  cached = 0;
  readonly blockTable: number[];
  constructor(first: number, blocks: number) {
    this.blockTable = Array.from({ length: blocks }, (_, i) => first + i);
  }
  step(tokens: readonly number[], sample: SampleRow | undefined): SeqStep {
    const positions = tokens.map((_, j) => this.cached + j);
    return {
      tokenIds: tokens,
      positions,
      slotMapping: positions.map(
        (p) => this.blockTable[Math.floor(p / KV_BLOCK_SIZE)] * KV_BLOCK_SIZE + (p % KV_BLOCK_SIZE),
      ),
      blockTable: this.blockTable,
      contextLen: this.cached + tokens.length,
      ...(sample && { sample }),
    };
  }
}

// ---- the step's commands, recorded from the model's own pass so they can be counted and replayed ----

const passOps = new Set([
  'setPipeline',
  'setBindGroup',
  'dispatchWorkgroups',
  'dispatchWorkgroupsIndirect',
  'pushDebugGroup',
  'popDebugGroup',
  'insertDebugMarker',
]);

interface PassCommand {
  op: string;
  args: unknown[];
}

/**
 * Runs `fn` with the device's createCommandEncoder wrapped so every compute pass it opens logs its commands (and
 * still runs them). Recording does not change what the GPU does; the wrapper is removed before returning.
 */
async function recordPasses<T>(gpu: Gpu, fn: () => Promise<T>): Promise<{ result: T; commands: PassCommand[] }> {
  const device = gpu.device as GPUDevice & { createCommandEncoder: GPUDevice['createCommandEncoder'] };
  const original = device.createCommandEncoder;
  const commands: PassCommand[] = [];
  const wrapPass = (pass: GPUComputePassEncoder) =>
    new Proxy(pass, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (typeof v !== 'function') return v;
        const fnv = v as (...a: unknown[]) => unknown;
        if (typeof prop === 'string' && passOps.has(prop))
          return (...args: unknown[]) => {
            commands.push({ op: prop, args });
            return fnv.apply(target, args);
          };
        return fnv.bind(target);
      },
    });
  device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor) => {
    const enc = original.call(device, desc);
    return new Proxy(enc, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (prop === 'beginComputePass') return (d?: GPUComputePassDescriptor) => wrapPass(target.beginComputePass(d));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  try {
    return { result: await fn(), commands };
  } finally {
    device.createCommandEncoder = original;
  }
}

function replay(pass: GPUComputePassEncoder, commands: readonly PassCommand[]): void {
  const p = pass as unknown as Record<string, (...a: unknown[]) => void>;
  for (const c of commands) p[c.op](...c.args);
}

function dispatchesByPipeline(commands: readonly PassCommand[]): Map<string, number> {
  const counts = new Map<string, number>();
  let label = '?';
  for (const c of commands) {
    if (c.op === 'setPipeline') label = (c.args[0] as GPUComputePipeline).label || '(unlabelled)';
    else if (c.op.startsWith('dispatchWorkgroups')) counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return counts;
}

// ---- bytes a decode step reads ----

function linearFormat(modelFormat: string): WeightFormat {
  const f = modelFormat.toLowerCase();
  if (f.includes('nvfp4')) return 'nvfp4';
  if (f.includes('fp8')) return 'fp8';
  return 'bf16';
}

export interface StepBytes {
  attention: number;
  router: number;
  experts: number;
  lmHead: number;
  kv: number;
  other: number;
  total: number;
  /** Distinct experts per layer the step reads (top-k at batch 1; expected count over random routing at B). */
  expertsPerLayer: number;
}

/**
 * Bytes one decode step of `batch` sequences at context `ctx` must read: every weight the step touches once (the
 * projections' packed data + block scales, the BF16 router and lm_head), the distinct experts' gate_up and down,
 * and each sequence's K and V over its context. fp8 weights are counted with per-tensor scales.
 */
export function decodeStepBytes(
  t: Qwen3VlMoeTextConfig,
  format: WeightFormat,
  kvDtype: KvDtype,
  batch: number,
  ctx: number,
): StepBytes {
  const H = t.hiddenSize;
  const L = t.numHiddenLayers;
  const qDim = t.numAttentionHeads * t.headDim;
  const kvDim = t.numKeyValueHeads * t.headDim;
  const I = t.moeIntermediateSize;
  const E = t.numExperts;
  const k = t.numExpertsPerTok;
  const w = (n: number, kk: number) => weightBytesPerExpert(format, n, kk);
  const expertsPerLayer = batch === 1 ? k : E * (1 - (1 - k / E) ** batch);
  const perExpert = w(2 * I, H) + w(H, I);
  const attention = L * (w(qDim + 2 * kvDim, H) + w(H, qDim));
  const router = L * E * H * 2;
  const experts = L * expertsPerLayer * perExpert;
  const lmHead = t.vocabSize * H * 2;
  const kv = L * batch * ctx * kvDim * 2 * kvBytesPerElement[kvDtype];
  // embedding rows (bf16), norm weights (f32 on the GPU), q/k norms
  const other = batch * H * 2 + (2 * L + 1) * H * 4 + 2 * L * t.headDim * 4;
  return {
    attention,
    router,
    experts,
    lmHead,
    kv,
    other,
    total: attention + router + experts + lmHead + kv + other,
    expertsPerLayer,
  };
}

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / Math.max(1, x.length));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b: number) => `${(b / 1e6).toFixed(b >= 1e8 ? 0 : 2)} MB`;

interface BatchContext {
  gpu: Gpu;
  model: Qwen3VlMoeModel;
  args: DecodeArgs;
  peak: StreamPeak;
  blocksPerSeq: number;
  prefillChunk: number;
}

/** Prefills B sequences, times the decode steps, records one step; prints the lines and returns the summary. */
async function measureBatch(x: BatchContext, B: number): Promise<Record<string, unknown> & { finite: boolean }> {
  const { gpu, model, args, peak, blocksPerSeq, prefillChunk } = x;
  const t = model.config.text;
  const seqs = Array.from({ length: B }, (_, i) => new Seq(i * blocksPerSeq, blocksPerSeq));
  // Prefill each sequence in chunks of up to 512 tokens; the last chunk samples its first token.
  const t0 = performance.now();
  let next: number[] = [];
  for (const [i, s] of seqs.entries()) {
    const prompt = randomTokens(args.context, t.vocabSize, 17 + i);
    for (let p = 0; p < prompt.length; p += prefillChunk) {
      const chunk = prompt.slice(p, p + prefillChunk);
      const last = p + chunk.length >= prompt.length;
      const r = await model.forward({ seqs: [s.step(chunk, last ? greedySampleRow(0) : undefined)], logits: 'none' });
      s.cached += chunk.length;
      if (last) next.push(r.samples[0]!.tokenId);
    }
  }
  const prefillMs = performance.now() - t0;
  console.log(
    `prefill: ${B} × ${args.context} tokens in ${prefillMs.toFixed(0)} ms ` +
      `(${((B * args.context) / (prefillMs / 1000)).toFixed(0)} tok/s, chunks of ${prefillChunk}, first call builds the graph)`,
  );
  let stepNo = 1;
  const decodeStep = async () => {
    const r = await model.forward({ seqs: seqs.map((s, i) => s.step([next[i]], greedySampleRow(stepNo))) });
    for (const s of seqs) s.cached += 1;
    next = r.samples.map((x) => x!.tokenId);
    stepNo++;
  };
  // First decode step: hidden-state magnitudes and logits (debug passes), then warm-up (builds the graph).
  const probe = await model.forward({
    seqs: seqs.map((s, i) => ({ ...s.step([next[i]], undefined), logits: 'last' as const })),
    captureHidden: true,
  });
  for (const s of seqs) s.cached += 1;
  const hidden = probe.hidden!;
  const rmsList = hidden.map(rms);
  const finite = rmsList.every(Number.isFinite) && probe.logits.every(Number.isFinite);
  const L = t.numHiddenLayers;
  const shown = [0, 1, Math.floor(L / 2), L].filter((v, i, a) => a.indexOf(v) === i);
  console.log(
    `residual RMS: ${shown.map((i) => `${i === 0 ? 'embed' : `layer ${i - 1}`} ${rmsList[i].toFixed(3)}`).join(', ')}, ` +
      `final norm ${rmsList[rmsList.length - 1].toFixed(3)}; max |logit| ${Math.max(...probe.logits.map(Math.abs)).toFixed(2)}` +
      (finite ? '' : ' — NOT FINITE'),
  );
  next = seqs.map((_, i) => {
    const row = probe.logits.subarray(i * t.vocabSize, (i + 1) * t.vocabSize);
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
    return best;
  });
  for (let i = 0; i < args.warmup; i++) await decodeStep();
  // Timed steps (wall clock, each waits for its sampled tokens).
  const times: number[] = [];
  for (let i = 0; i < args.steps; i++) {
    const s0 = performance.now();
    await decodeStep();
    times.push(performance.now() - s0);
  }
  const ctxMid = args.context + 1 + args.warmup + Math.floor(args.steps / 2);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const med = median(times);
  // One more step recorded: its pass's commands are counted and replayed for the GPU-only time.
  const { commands } = await recordPasses(gpu, decodeStep);
  const dispatches = commands.filter((c) => c.op.startsWith('dispatchWorkgroups')).length;
  const byPipeline = [...dispatchesByPipeline(commands).entries()].sort((a, b) => b[1] - a[1]);
  const gpuTime = await timeDispatches(gpu, (pass) => replay(pass, commands), {
    reps: args.quick ? 3 : 20,
    warmup: 1,
  });
  const bytes = decodeStepBytes(t, linearFormat(model.format), args.kvDtype, B, ctxMid);
  const rooflineTokS = (B * peak.gbps * 1e9) / bytes.total;
  const wallTokS = (B * 1000) / med;
  const gpuTokS = (B * 1000) / gpuTime.msPerRep;
  console.log(
    `decode: batch ${B}, context ${args.context + 1 + args.warmup}…${ctxMid * 2 - args.context - 1 - args.warmup}, ${args.steps} steps`,
  );
  console.log(
    `  wall:  ${med.toFixed(3)} ms/step median (mean ${mean.toFixed(3)}), ${wallTokS.toFixed(1)} tok/s, ` +
      `${(med / B).toFixed(3)} ms/token`,
  );
  console.log(
    `  GPU:   ${gpuTime.msPerRep.toFixed(3)} ms/step (${gpuTime.method}, step replayed), ${gpuTokS.toFixed(1)} tok/s`,
  );
  // Per layer: pipelines dispatched at least L times count ⌊n/L⌋ per layer (rms_norm: 2L + 1 → 2); the rest is
  // the embedding, final norm, lm_head and sampler.
  const perLayer = L > 1 ? byPipeline.reduce((n, [, c]) => n + Math.floor(c / L), 0) : dispatches;
  console.log(
    `  dispatches: ${dispatches} per step = ${perLayer} per layer × ${L} + ${dispatches - perLayer * L} ` +
      `(embedding, final norm, lm_head, sampler); by pipeline: ${byPipeline.map(([n, c]) => `${n} ${c}`).join(', ')}`,
  );
  console.log(
    `  bytes/step: ${mb(bytes.total)} = attention ${mb(bytes.attention)} + experts ${mb(bytes.experts)} ` +
      `(${bytes.expertsPerLayer.toFixed(1)}/layer) + router ${mb(bytes.router)} + lm_head ${mb(bytes.lmHead)} + ` +
      `KV ${mb(bytes.kv)} (${args.kvDtype}) + other ${mb(bytes.other)}`,
  );
  console.log(
    `  roofline at the stream peak ${peak.gbps.toFixed(0)} GB/s: ${rooflineTokS.toFixed(0)} tok/s; achieved ` +
      `${((100 * wallTokS) / rooflineTokS).toFixed(1)}% (wall), ${((100 * gpuTokS) / rooflineTokS).toFixed(1)}% (GPU); ` +
      `effective ${(bytes.total / (med / 1000) / 1e9).toFixed(1)} GB/s`,
  );
  return {
    batch: B,
    context: args.context,
    steps: args.steps,
    kvDtype: args.kvDtype,
    prefillMs,
    wall: { msPerStepMedian: med, msPerStepMean: mean, tokPerS: wallTokS, stepsMs: times },
    gpu: { msPerStep: gpuTime.msPerRep, method: gpuTime.method, tokPerS: gpuTokS },
    dispatchesPerStep: dispatches,
    dispatchesPerLayer: perLayer,
    dispatchesByPipeline: Object.fromEntries(byPipeline),
    bytesPerStep: bytes,
    rooflineTokPerS: rooflineTokS,
    residualRms: rmsList,
    finite,
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  let dir = args.dir;
  let tempDir: string | null = null;
  if (!dir) {
    tempDir = mkdtempSync(join(tmpdir(), 'dawnllm-decode-'));
    dir = join(tempDir, 'small');
    makeSyntheticCheckpoint(dir, presets.small, { log: (l) => console.log(`synthetic: ${l}`) });
  }
  const gpu = await openBenchGpu();
  try {
    const benchArgs: BenchArgs = {
      quick: args.quick,
      skipLarge: false,
      json: null,
      filter: null,
      reps: null,
      sweep: false,
    };
    const peak = await measureStreamPeak(gpu, benchArgs);
    const maxB = Math.max(...args.batches);
    const maxLen = args.context + args.steps + args.warmup + 2;
    const blocksPerSeq = Math.ceil(maxLen / KV_BLOCK_SIZE);
    const prefillChunk = Math.min(args.context, 512);
    const model = await Qwen3VlMoeModel.load(gpu, dir, {
      kvDtype: args.kvDtype,
      numKvBlocks: maxB * blocksPerSeq,
      maxSeqs: maxB,
      maxTokens: Math.max(prefillChunk, maxB),
      maxModelLen: blocksPerSeq * KV_BLOCK_SIZE,
      maxLogitRows: maxB,
    });
    try {
      const t = model.config.text;
      const results: Record<string, unknown>[] = [];
      let finite = true;
      console.log(
        `model: ${dir}: ${model.format}, ${t.numHiddenLayers} layers, hidden ${t.hiddenSize}, ` +
          `${t.numExperts} experts top-${t.numExpertsPerTok}, vocab ${t.vocabSize}; ` +
          `${mb(model.weightBytes)} on the GPU, loaded in ${(model.loadMs / 1000).toFixed(1)} s`,
      );
      for (const B of args.batches) {
        const r = await measureBatch({ gpu, model, args, peak, blocksPerSeq, prefillChunk }, B);
        results.push(r);
        finite &&= r.finite;
      }
      if (args.json) {
        const summary = {
          adapter: gpu.caps.adapter,
          model: {
            dir,
            format: model.format,
            weightBytes: model.weightBytes,
            loadMs: model.loadMs,
            config: model.config.text,
          },
          streamPeak: peak,
          results,
        };
        writeFileSync(args.json, `${JSON.stringify(summary, null, 2)}\n`);
        console.log(`wrote ${args.json}`);
      }
      return finite ? 0 : 1;
    } finally {
      model.release();
    }
  } finally {
    gpu.destroy();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

// Run only as a script: tests import decodeStepBytes.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exit(await main());

// Shared kernel micro-benchmark harness (llm.c dev/cuda habits):
//   1. every configuration is checked against its CPU reference (small shapes fully, big shapes on sampled rows)
//      before any time is printed; a mismatch prints, skips timing, and makes the process exit non-zero;
//   2. timing uses kernels/gpu/timing.ts (timestamp queries where the adapter has them), repeating each case until
//      about a target time has passed, with inputs rotated over copies larger than the last-level cache;
//   3. bandwidth is reported against the streaming-read peak (kernels/stream_read.wgsl) measured in the same run.
// Line format: `matvec_nvfp4_f32_f32 M=1 N=4096 K=2048 | 0.021 ms | 812 GB/s | 28% of stream peak | 0.8 TFLOP/s`
// Flags every bench accepts: --quick (fewer reps, smaller peak buffer) --skip-large --json PATH --filter REGEX
//   --reps N (fixed repetitions instead of the time target) --sweep (benches with tuning knobs also time a grid of
//   work splits, for tuning on the GPU)
import { writeFileSync } from 'node:fs';
import { createBuffer, createBufferFrom, readU32 } from '../../kernels/gpu/buffers.js';
import { describeCapabilities } from '../../kernels/gpu/capabilities.js';
import { type Gpu, openGpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { timeDispatches } from '../../kernels/gpu/timing.js';
import { StreamRead } from '../../kernels/stream_read.js';

export interface BenchArgs {
  quick: boolean;
  skipLarge: boolean;
  json: string | null;
  filter: RegExp | null;
  reps: number | null;
  sweep: boolean;
}

export function parseBenchArgs(argv: string[] = process.argv.slice(2)): BenchArgs {
  const args: BenchArgs = { quick: false, skipLarge: false, json: null, filter: null, reps: null, sweep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench: ${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--skip-large') args.skipLarge = true;
    else if (a === '--json') args.json = value();
    else if (a === '--filter') args.filter = new RegExp(value());
    else if (a === '--reps') args.reps = Number.parseInt(value(), 10);
    else if (a === '--sweep') args.sweep = true;
    else
      throw new Error(
        `bench: unknown argument ${a} (known: --quick --skip-large --json PATH --filter RE --reps N --sweep)`,
      );
  }
  return args;
}

/** Opens the GPU and prints what it is; on a software adapter says that the numbers are CPU numbers. */
export async function openBenchGpu(): Promise<Gpu> {
  const gpu = await openGpu({ quiet: true });
  console.log(`adapter: ${describeCapabilities(gpu.caps)}`);
  if (gpu.caps.adapter.isSoftware)
    console.log('NOTE: software adapter (lavapipe): every number below measures the CPU, not a GPU');
  return gpu;
}

/** Outcome of a reference check; `message` says what was compared (and the first mismatches when !ok). */
export interface CheckResult {
  ok: boolean;
  message: string;
}

export interface BenchCase {
  /** Kernel variant name, e.g. 'matvec_nvfp4_f32_f32_subgroup'. */
  name: string;
  /** Printed as `M=1 N=4096 K=2048`, in insertion order. */
  shape: Record<string, number | string>;
  /** Bytes one repetition must move (weights + scales + activations + outputs). */
  bytes: number;
  /** Floating-point operations of one repetition (2·M·N·K for a matmul). */
  flops: number;
  /** Compares the kernel's output with the CPU reference; runs before any timing. */
  check(): Promise<CheckResult>;
  /** Records one repetition into `pass`; `rep` picks the rotated input copy. */
  encode(pass: GPUComputePassEncoder, rep: number): void;
}

export interface BenchResult {
  name: string;
  shape: Record<string, number | string>;
  ms: number;
  method: 'timestamp' | 'wall';
  reps: number;
  bytes: number;
  flops: number;
  gbps: number;
  pctOfPeak: number | null;
  tflops: number;
}

export interface StreamPeak {
  bytes: number;
  ms: number;
  gbps: number;
  method: 'timestamp' | 'wall';
}

/** Case label: name and shape, the thing --filter matches. */
export function caseLabel(c: Pick<BenchCase, 'name' | 'shape'>): string {
  const dims = Object.entries(c.shape)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return dims ? `${c.name} ${dims}` : c.name;
}

function fmtGbps(gbps: number): string {
  return gbps.toFixed(gbps >= 10 ? 0 : 2);
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4);
}

export function formatLine(r: BenchResult): string {
  const pct = r.pctOfPeak === null ? '' : ` | ${r.pctOfPeak.toFixed(0)}% of stream peak`;
  const tf = r.flops > 0 ? ` | ${r.tflops >= 0.1 ? r.tflops.toFixed(2) : r.tflops.toFixed(4)} TFLOP/s` : '';
  return `${caseLabel(r)} | ${fmtMs(r.ms)} ms | ${fmtGbps(r.gbps)} GB/s${pct}${tf}`;
}

/**
 * How many copies of an input of `bytesPerCopy` to rotate between repetitions so that together they exceed the
 * last-level cache (H100 L2 50 MB; a CPU's L3 for lavapipe): at least `minTotalBytes` in all, at most
 * `maxTotalBytes`, and at least one copy.
 */
export function rotationCopies(bytesPerCopy: number, minTotalBytes = 256 << 20, maxTotalBytes = 2 << 30): number {
  const want = Math.ceil(minTotalBytes / Math.max(1, bytesPerCopy));
  const cap = Math.floor(maxTotalBytes / Math.max(1, bytesPerCopy));
  return Math.max(1, Math.min(want, cap));
}

/** `count` distinct indices in [0, n), spread deterministically (for sampled-row checks of big shapes). */
export function sampleIndices(n: number, count: number, seed = 1): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>([0, n - 1]);
  let s = seed >>> 0 || 1;
  while (picked.size < count) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    picked.add(s % n);
  }
  return [...picked].sort((a, b) => a - b);
}

/** Stream-read shapes tried; the best is the peak (GPUs like many small workgroups, lavapipe few long ones). */
const STREAM_CONFIGS = [
  { wgSize: 256, items: 8 },
  { wgSize: 256, items: 16 },
  { wgSize: 64, items: 64 },
  { wgSize: 32, items: 256 },
];

/** Streaming-read peak: the best of STREAM_CONFIGS reading a buffer as large as a binding allows (≤ 1 GiB; 64 MiB with --quick). */
export async function measureStreamPeak(gpu: Gpu, args: BenchArgs): Promise<StreamPeak> {
  const limit = Math.min(gpu.caps.maxStorageBufferBindingSize, gpu.caps.maxBufferSize, 1 << 30);
  const bytes = Math.floor(Math.min(limit, args.quick ? 64 << 20 : limit) / 16) * 16;
  const words = new Uint32Array(bytes / 4);
  for (let i = 0; i < words.length; i++) words[i] = (i * 2654435761) >>> 0;
  const src = createBufferFrom(gpu, 'stream_read/src', words);
  let best: StreamPeak | null = null;
  try {
    for (const config of STREAM_CONFIGS) {
      const kernel = await StreamRead.create(gpu, config);
      const n = kernel.numWorkgroups(bytes);
      const out = createBuffer(gpu, 'stream_read/out', n * 4);
      try {
        const d = kernel.bind({ src, out }, bytes);
        await runDispatches(gpu, [d], 'stream_read check');
        const got = await readU32(gpu, out, n);
        const want = kernel.expectedSums(words);
        const bad = want.findIndex((v, i) => v !== got[i]);
        if (bad >= 0) throw new Error(`stream_read: workgroup ${bad} summed ${got[bad]}, expected ${want[bad]}`);
        const reps = args.reps ?? (args.quick ? 3 : 20);
        const t = await timeDispatches(gpu, (pass) => d.encode(pass), { reps, warmup: 1 });
        const peak = { bytes, ms: t.msPerRep, gbps: bytes / t.msPerRep / 1e6, method: t.method };
        if (!best || peak.gbps > best.gbps) best = peak;
        console.log(
          `stream_read_u32x4 wg=${config.wgSize} items=${config.items} bytes=${bytes} | ${fmtMs(peak.ms)} ms | ${fmtGbps(peak.gbps)} GB/s (${t.method})`,
        );
      } finally {
        out.destroy();
      }
    }
  } finally {
    src.destroy();
  }
  if (!best) throw new Error('stream_read: no configuration ran');
  console.log(`stream peak: ${fmtGbps(best.gbps)} GB/s`);
  return best;
}

/** Runs cases one by one: check, then time, then print; collects results and failures for the summary. */
export class BenchRunner {
  readonly results: BenchResult[] = [];
  readonly failures: { label: string; message: string }[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly args: BenchArgs,
    readonly peak: StreamPeak | null,
  ) {}

  /** True when --filter excludes the case (callers skip building its buffers). */
  skips(c: Pick<BenchCase, 'name' | 'shape'>): boolean {
    return this.args.filter !== null && !this.args.filter.test(caseLabel(c));
  }

  async run(c: BenchCase): Promise<BenchResult | null> {
    const label = caseLabel(c);
    if (this.skips(c)) return null;
    const check = await c.check();
    if (!check.ok) {
      console.log(`MISMATCH ${label}: ${check.message} (not timed)`);
      this.failures.push({ label, message: check.message });
      return null;
    }
    const reps = this.args.reps ?? (await this.chooseReps(c));
    const t = await timeDispatches(this.gpu, (pass, rep) => c.encode(pass, rep), { reps, warmup: 1 });
    const gbps = c.bytes / t.msPerRep / 1e6;
    const r: BenchResult = {
      name: c.name,
      shape: c.shape,
      ms: t.msPerRep,
      method: t.method,
      reps,
      bytes: c.bytes,
      flops: c.flops,
      gbps,
      pctOfPeak: this.peak ? (100 * gbps) / this.peak.gbps : null,
      tflops: c.flops / t.msPerRep / 1e9,
    };
    console.log(formatLine(r));
    this.results.push(r);
    return r;
  }

  /** Repetitions that take about 1 s (0.2 s with --quick), between 3 and 500, from one timed repetition. */
  private async chooseReps(c: BenchCase): Promise<number> {
    const one = await timeDispatches(this.gpu, (pass, rep) => c.encode(pass, rep), { reps: 1, warmup: 0 });
    const targetMs = this.args.quick ? 200 : 1000;
    return Math.max(3, Math.min(500, Math.ceil(targetMs / Math.max(one.msPerRep, 1e-4))));
  }

  /** Writes the JSON summary if asked; returns the exit code (1 when any check failed). */
  finish(): number {
    if (this.args.json) {
      const summary = {
        adapter: describeCapabilities(this.gpu.caps),
        isSoftware: this.gpu.caps.adapter.isSoftware,
        streamPeak: this.peak,
        results: this.results,
        failures: this.failures,
      };
      writeFileSync(this.args.json, `${JSON.stringify(summary, null, 2)}\n`);
      console.log(`wrote ${this.args.json}`);
    }
    if (this.failures.length) console.log(`${this.failures.length} case(s) failed their reference check`);
    return this.failures.length ? 1 : 0;
  }
}

// Shared by the matmul benchmarks (bench/kernels/matvec.ts, bench/kernels/matmul_gemm.ts): the Qwen3-VL-30B-A3B
// shapes (and the --quick stand-ins that run on lavapipe in well under a minute), random packed weights, byte
// counts, and the sampled reference check. Lives in lib/ so `make bench-kernels` (which runs bench/kernels/*.ts)
// does not run it as a benchmark.
import { createBufferFrom } from '../../../kernels/gpu/buffers.js';
import type { Gpu } from '../../../kernels/gpu/device.js';
import { dequantRow, type HostWeight } from '../../../kernels/reference/matvec.js';
import { randomHostWeight, uploadHostWeight } from '../../../kernels/reference/matvec_weights.js';
import { type GpuWeight, type WeightFormat, weightBytesPerExpert } from '../../../kernels/weight_format.js';
import type { CheckResult } from '../harness.js';

export interface LinearShape {
  name: string;
  N: number;
  K: number;
}

/** Dense projections of one decoder layer and the LM head (hidden 2048, 32 q heads and 4 kv heads of 128). */
/** Seeded uniform values in [lo, hi) (an LCG: the same inputs every run, so checks and timings repeat). */
export function randomUniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 4294967296) * (hi - lo);
  });
}

export function denseShapes(quick: boolean): LinearShape[] {
  return quick
    ? [
        { name: 'q_proj', N: 1024, K: 512 },
        { name: 'kv_proj', N: 128, K: 512 },
        { name: 'o_proj', N: 512, K: 1024 },
        { name: 'lm_head', N: 4096, K: 512 },
      ]
    : [
        { name: 'q_proj', N: 4096, K: 2048 },
        { name: 'kv_proj', N: 512, K: 2048 },
        { name: 'o_proj', N: 2048, K: 4096 },
        { name: 'lm_head', N: 151936, K: 2048 },
      ];
}

/** MoE experts: fused gate_up [E, 2·I, H] and down [E, H, I]; 8 active experts per token. */
export function expertShapes(quick: boolean) {
  const [E, H, I] = quick ? [16, 512, 192] : [128, 2048, 768];
  return {
    numExperts: E,
    active: 8,
    gateUp: { name: 'experts.gate_up', N: 2 * I, K: H } as LinearShape,
    down: { name: 'experts.down', N: H, K: I } as LinearShape,
  };
}

/** Formats benchmarked per shape: the LM head stays bf16 in the checkpoints (NVFP4 shown for the GEMV target). */
export function formatsFor(shape: LinearShape): WeightFormat[] {
  return shape.name === 'lm_head' ? ['bf16', 'nvfp4'] : ['nvfp4', 'fp8', 'bf16'];
}

const made = new Map<string, HostWeight>();

/** A random packed weight, made once per (format, experts, shape, seed) and reused (--sweep revisits shapes). */
export function makeWeight(format: WeightFormat, E: number, s: LinearShape, seed = 1): HostWeight {
  const key = `${format}/${E}/${s.name}/${s.N}x${s.K}/${seed}`;
  let w = made.get(key);
  if (!w) {
    // gate_up keeps one NVFP4 global scale per half, as the checkpoints do
    const numRowGroups = s.name === 'experts.gate_up' ? 2 : 1;
    w = randomHostWeight(format, E, s.N, s.K, { seed, numRowGroups });
    made.set(key, w);
  }
  return w;
}

/** Bytes one expert's weight occupies (data + scales): what a GEMV over it must stream. */
export function expertBytes(h: HostWeight): number {
  return weightBytesPerExpert(h.format, h.N, h.K, h.scaleBlock);
}

/** `copies` uploads of the same weight (rotated between repetitions so the caches cannot hold the weight). */
export function uploadCopies(gpu: Gpu, h: HostWeight, label: string, copies: number): GpuWeight[] {
  const first = uploadHostWeight(gpu, h, label);
  const out = [first];
  for (let i = 1; i < copies; i++) out.push({ ...first, data: createBufferFrom(gpu, `${label}#${i}.data`, h.data) });
  return out;
}

export function destroyCopies(ws: GpuWeight[]): void {
  for (const w of ws.slice(1)) w.data.destroy();
  for (const b of [ws[0].data, ws[0].blockScales, ws[0].globalScales, ws[0].scales, ws[0].preScale]) b?.destroy();
}

/** A sampled output: row `row` of the output, column `col`, expert `e`, reading x row `xRow`. */
export interface Sample {
  row: number;
  col: number;
  e: number;
  xRow: number;
}

/**
 * Compares sampled outputs with the f64 reference from the same packed bytes. Tolerance per output (as in the
 * kernel tests): f32 accumulation (K + 16)·2^-24·Σ|x·w| + 2^-23·|ref|, plus 2^-10·Σ|x·w| + K·2^-23 where the
 * kernel rounds its operands to f16 (tensor cores). `silu`: out = silu(gate row) · up row (N/2 apart).
 */
export function checkSamples(
  got: (s: Sample) => number,
  h: HostWeight,
  x: Float32Array,
  samples: Sample[],
  o: { f16Operands?: boolean; silu?: boolean; scale?: (s: Sample) => number },
): CheckResult {
  const K = h.K;
  const rows = new Map<number, Float64Array>();
  const rowOf = (e: number, n: number) => {
    const key = e * h.N + n;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = dequantRow(h, e, n)));
    return r;
  };
  const dot = (e: number, n: number, xRow: number): [number, number] => {
    const w = rowOf(e, n);
    let acc = 0;
    let abs = 0;
    for (let k = 0; k < K; k++) {
      const p = x[xRow * K + k] * w[k];
      acc += p;
      abs += Math.abs(p);
    }
    return [acc, abs];
  };
  const bad: string[] = [];
  let worst = 0;
  for (const s of samples) {
    let [ref, abs] = dot(s.e, s.col, s.xRow);
    if (o.silu) {
      const [up, absUp] = dot(s.e, s.col + h.N / 2, s.xRow);
      const g = ref / (1 + Math.exp(-ref));
      abs = 1.1 * abs * Math.abs(up) + Math.abs(g) * absUp + abs * absUp;
      ref = g * up;
    }
    const scale = o.scale ? o.scale(s) : 1;
    ref *= scale;
    abs *= Math.abs(scale);
    const tol =
      (K + 16) * 2 ** -24 * abs +
      2 ** -23 * Math.abs(ref) +
      (o.f16Operands ? 2 ** -10 * abs + K * 2 ** -23 : 0) +
      1e-30;
    const v = got(s);
    const err = Math.abs(v - ref);
    worst = Math.max(worst, err / tol);
    if (!(err <= tol) && bad.length < 5) bad.push(`(row ${s.row}, col ${s.col}): ref ${ref} vs gpu ${v}`);
  }
  return bad.length
    ? { ok: false, message: `sampled outputs outside tolerance: ${bad.join('; ')}` }
    : { ok: true, message: `${samples.length} sampled outputs, worst ${(100 * worst).toFixed(1)}% of tolerance` };
}

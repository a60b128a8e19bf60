// Random weights in every kernels/weight_format.ts layout, with their exact f64 decode, for GEMM tests and benchmarks.
// Packed bytes are drawn directly (every E2M1 code, E4M3 values incl. subnormals, signed zeros) rather than quantized
// from floats: quantizing a 2048×4096 matrix through f32ToE4m3's table search would take minutes, and the kernels
// only ever see bytes. Rows decode on demand (rowOf) so a benchmark can check a few outputs of a 400 M-weight tensor.
import { toBf16Array } from '../../core/float16.js';
import { createBufferFrom } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import type { GpuWeight, WeightFormat } from '../weight_format.js';
import { E2M1_VALUES, e4m3ToF32 } from './quant_formats.js';

export interface HostWeightOptions {
  numExperts?: number;
  numRowGroups?: number; // nvfp4
  scaleBlock?: [number, number]; // fp8 (bn, bk), default per-tensor [N, K]
  preScale?: boolean;
  seed?: number;
}

/** Buffers as the loader would upload them, plus the exact decode. */
export interface HostWeight {
  format: WeightFormat;
  numExperts: number;
  N: number;
  K: number;
  data: Uint8Array; // [E, N, K] in the format's packing
  blockScales?: Uint8Array; // nvfp4 [E, N, K/16]
  globalScales?: Float32Array; // nvfp4 [E, numRowGroups]
  numRowGroups?: number;
  scales?: Float32Array; // fp8 [E, gn, gk]
  scaleBlock?: [number, number];
  preScale?: Float32Array; // [E, K]
  /** W[e, n, :] in f64, decoded from the bytes above (preScale not applied). */
  rowOf(e: number, n: number): Float64Array;
}

const E4M3 = Float64Array.from({ length: 256 }, (_, b) => e4m3ToF32(b));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** E4M3 byte with a positive value in [2^lo, 2^hi) (no NaN). */
function e4m3Byte(rand: () => number, lo: number, hi: number): number {
  return ((lo + 7 + Math.floor(rand() * (hi - lo))) << 3) | Math.floor(rand() * 8);
}

export function randomHostWeight(format: WeightFormat, N: number, K: number, o: HostWeightOptions = {}): HostWeight {
  const E = o.numExperts ?? 1;
  const rand = rng(o.seed ?? 1);
  const count = E * N * K;
  const base = { format, numExperts: E, N, K };
  const preScale = o.preScale ? Float32Array.from({ length: E * K }, () => 0.5 + 1.5 * rand()) : undefined;
  if (format === 'f32') {
    const w = Float32Array.from({ length: count }, () => rand() * 2 - 1);
    const rowOf = (e: number, n: number) => Float64Array.from(w.subarray((e * N + n) * K, (e * N + n + 1) * K));
    return { ...base, data: new Uint8Array(w.buffer), preScale, rowOf };
  }
  if (format === 'bf16') {
    const bits = toBf16Array(Float32Array.from({ length: count }, () => rand() * 2 - 1));
    const rowOf = (e: number, n: number) => {
      const row = new Float64Array(K);
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let k = 0; k < K; k++) {
        u[0] = bits[(e * N + n) * K + k] << 16;
        row[k] = f[0];
      }
      return row;
    };
    return { ...base, data: new Uint8Array(bits.buffer), preScale, rowOf };
  }
  if (format === 'nvfp4') {
    const G = o.numRowGroups ?? 1;
    const data = Uint8Array.from({ length: count / 2 }, () => Math.floor(rand() * 256));
    const blockScales = Uint8Array.from({ length: count / 16 }, () => e4m3Byte(rand, -4, 4));
    const globalScales = Float32Array.from({ length: E * G }, () => (0.5 + rand()) / 64);
    const rowOf = (e: number, n: number) => {
      const row = new Float64Array(K);
      const g = globalScales[e * G + Math.floor(n / (N / G))];
      for (let k = 0; k < K; k++) {
        const i = (e * N + n) * K + k;
        const code = i % 2 === 0 ? data[i >> 1] & 0xf : data[i >> 1] >> 4;
        row[k] = E2M1_VALUES[code] * E4M3[blockScales[i >> 4]] * g;
      }
      return row;
    };
    return { ...base, data, blockScales, globalScales, numRowGroups: G, preScale, rowOf };
  }
  const [bn, bk] = o.scaleBlock ?? [N, K];
  const gn = Math.ceil(N / bn);
  const gk = Math.ceil(K / bk);
  // Any byte but the NaNs 0x7F / 0xFF.
  const data = Uint8Array.from({ length: count }, () => {
    const b = Math.floor(rand() * 254);
    return b >= 0x7f ? b + 1 : b;
  });
  const scales = Float32Array.from({ length: E * gn * gk }, () => (0.5 + rand()) / 256);
  const rowOf = (e: number, n: number) => {
    const row = new Float64Array(K);
    for (let k = 0; k < K; k++)
      row[k] = E4M3[data[(e * N + n) * K + k]] * scales[(e * gn + Math.floor(n / bn)) * gk + Math.floor(k / bk)];
    return row;
  };
  return { ...base, data, scales, scaleBlock: [bn, bk], preScale, rowOf };
}

/** The whole decoded weight [E, N, K] (small shapes only). */
export function dequantHostWeight(w: HostWeight): Float64Array {
  const out = new Float64Array(w.numExperts * w.N * w.K);
  for (let e = 0; e < w.numExperts; e++) for (let n = 0; n < w.N; n++) out.set(w.rowOf(e, n), (e * w.N + n) * w.K);
  return out;
}

/** Uploads a host weight as the loader would (the one GPU helper here, shared by tests and benchmarks). */
export function uploadHostWeight(gpu: Gpu, label: string, w: HostWeight): GpuWeight {
  const up = (what: string, data: ArrayBufferView | undefined) =>
    data ? createBufferFrom(gpu, `${label}/${what}`, data) : undefined;
  return {
    label,
    format: w.format,
    numExperts: w.numExperts,
    N: w.N,
    K: w.K,
    data: up('data', w.data)!,
    blockScales: up('block_scales', w.blockScales),
    globalScales: up('global_scales', w.globalScales),
    numRowGroups: w.numRowGroups,
    scales: up('scales', w.scales),
    scaleBlock: w.scaleBlock,
    preScale: up('pre_scale', w.preScale),
  };
}

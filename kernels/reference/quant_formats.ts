// CPU decoding (and, for tests, encoding) of the weight formats in kernels/weight_format.ts, exact in f64.
// E2M1 (FP4): bit 3 sign, 2 exponent bits (bias 1), 1 mantissa bit: magnitudes [0, .5, 1, 1.5, 2, 3, 4, 6].
// E4M3 (FP8, "fn" variant): bit 7 sign, 4 exponent bits (bias 7), 3 mantissa bits, subnormals, max 448,
// 0x7F/0xFF are NaN, no infinities.

export const E2M1_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

export function e2m1ToF32(code: number): number {
  return E2M1_VALUES[code & 0xf];
}

export function e4m3ToF32(byte: number): number {
  const sign = byte & 0x80 ? -1 : 1;
  const e = (byte >> 3) & 0xf;
  const m = byte & 7;
  if (e === 15 && m === 7) return Number.NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (1 + m / 8) * 2 ** (e - 7);
}

const E4M3_TABLE = Float64Array.from({ length: 256 }, (_, b) => e4m3ToF32(b));

/** Nearest E4M3 byte (round half to even, saturating at ±448): how ModelOpt/PyTorch cast scales. */
export function f32ToE4m3(v: number): number {
  if (Number.isNaN(v)) return 0x7f;
  const sign = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(v), 448);
  let best = 0;
  let bestErr = Number.POSITIVE_INFINITY;
  for (let b = 0; b < 0x7f; b++) {
    const err = Math.abs(E4M3_TABLE[b] - a);
    if (err < bestErr || (err === bestErr && (b & 1) === 0)) {
      best = b;
      bestErr = err;
    }
  }
  return sign | best;
}

/** Nearest E2M1 code (ties to even code), saturating at ±6. */
export function f32ToE2m1(v: number): number {
  const sign = v < 0 ? 8 : 0;
  const a = Math.min(Math.abs(v), 6);
  let best = 0;
  let bestErr = Number.POSITIVE_INFINITY;
  for (let c = 0; c < 8; c++) {
    const err = Math.abs(E2M1_VALUES[c] - a);
    if (err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = c;
      bestErr = err;
    }
  }
  return sign | best;
}

/** An NVFP4 matrix on the host, laid out as kernels/weight_format.ts says (E = 1 here; stack for experts). */
export interface Nvfp4Host {
  N: number;
  K: number;
  packed: Uint8Array; // [N, K/2]
  blockScales: Uint8Array; // [N, K/16] E4M3
  globalScales: Float32Array; // [numRowGroups]
}

/** ModelOpt's NVFP4 recipe: global = amax/(6·448), block scale = e4m3(amax_block/6/global), code = e2m1(w/(s·global)). */
export function quantizeNvfp4(w: ArrayLike<number>, N: number, K: number, numRowGroups = 1): Nvfp4Host {
  if (K % 16 !== 0) throw new Error(`quantizeNvfp4: K ${K} is not a multiple of 16`);
  const packed = new Uint8Array((N * K) / 2);
  const blockScales = new Uint8Array((N * K) / 16);
  const globalScales = new Float32Array(numRowGroups);
  const rowsPerGroup = N / numRowGroups;
  for (let g = 0; g < numRowGroups; g++) {
    let amax = 0;
    for (let i = g * rowsPerGroup * K; i < (g + 1) * rowsPerGroup * K; i++) amax = Math.max(amax, Math.abs(w[i]));
    globalScales[g] = Math.fround(amax > 0 ? amax / (6 * 448) : 1);
  }
  for (let n = 0; n < N; n++) {
    const global = globalScales[Math.floor(n / rowsPerGroup)];
    for (let b = 0; b < K / 16; b++) {
      let amax = 0;
      for (let j = 0; j < 16; j++) amax = Math.max(amax, Math.abs(w[n * K + b * 16 + j]));
      const sByte = f32ToE4m3(amax / 6 / global);
      blockScales[n * (K / 16) + b] = sByte;
      const scale = e4m3ToF32(sByte) * global;
      for (let j = 0; j < 16; j++) {
        const k = b * 16 + j;
        const code = scale > 0 ? f32ToE2m1(w[n * K + k] / scale) : 0;
        packed[(n * K + k) >> 1] |= k % 2 === 0 ? code : code << 4;
      }
    }
  }
  return { N, K, packed, blockScales, globalScales };
}

export function dequantNvfp4(q: Nvfp4Host): Float64Array {
  const { N, K } = q;
  const out = new Float64Array(N * K);
  const rowsPerGroup = N / q.globalScales.length;
  for (let n = 0; n < N; n++) {
    const global = q.globalScales[Math.floor(n / rowsPerGroup)];
    for (let k = 0; k < K; k++) {
      const byte = q.packed[(n * K + k) >> 1];
      const code = k % 2 === 0 ? byte & 0xf : byte >> 4;
      out[n * K + k] = e2m1ToF32(code) * e4m3ToF32(q.blockScales[n * (K / 16) + (k >> 4)]) * global;
    }
  }
  return out;
}

/** An FP8 E4M3 matrix with a block grid of multiplying f32 scales (per-tensor = one block, per-channel = (1, K)). */
export interface Fp8Host {
  N: number;
  K: number;
  data: Uint8Array; // [N, K]
  scales: Float32Array; // [ceil(N/bn), ceil(K/bk)]
  scaleBlock: [number, number];
}

export function quantizeFp8(w: ArrayLike<number>, N: number, K: number, scaleBlock: [number, number]): Fp8Host {
  const [bn, bk] = scaleBlock;
  const gn = Math.ceil(N / bn);
  const gk = Math.ceil(K / bk);
  const scales = new Float32Array(gn * gk);
  const data = new Uint8Array(N * K);
  for (let i = 0; i < gn; i++) {
    for (let j = 0; j < gk; j++) {
      let amax = 0;
      for (let n = i * bn; n < Math.min(N, (i + 1) * bn); n++)
        for (let k = j * bk; k < Math.min(K, (j + 1) * bk); k++) amax = Math.max(amax, Math.abs(w[n * K + k]));
      const s = Math.fround(amax > 0 ? amax / 448 : 1);
      scales[i * gk + j] = s;
      for (let n = i * bn; n < Math.min(N, (i + 1) * bn); n++)
        for (let k = j * bk; k < Math.min(K, (j + 1) * bk); k++) data[n * K + k] = f32ToE4m3(w[n * K + k] / s);
    }
  }
  return { N, K, data, scales, scaleBlock };
}

export function dequantFp8(q: Fp8Host): Float64Array {
  const { N, K, scaleBlock } = q;
  const [bn, bk] = scaleBlock;
  const gk = Math.ceil(K / bk);
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++)
      out[n * K + k] = E4M3_TABLE[q.data[n * K + k]] * q.scales[Math.floor(n / bn) * gk + Math.floor(k / bk)];
  return out;
}

/** y[m, n] = Σ_k x[m, k] · W[n, k], in f64. x: (M, K) · W: (N, K) · y: (M, N) */
export function matmulRef(x: ArrayLike<number>, w: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k] * w[n * K + k];
      y[m * N + n] = acc;
    }
  return y;
}

// The WGSL decoders (kernels/dequant.wgsl, kernels/dequant_f16.wgsl) against the CPU reference, bit for bit:
// all 16 E2M1 codes, all 254 non-NaN E4M3 bytes (0, -0, subnormals, ±448), bf16 samples (incl. ±0, subnormals,
// ±inf), and the f16 bit-pattern shortcuts both on the CPU (exhaustive math) and on the device.
// Finding on the shortcuts: E2M1 nibble n → f16 bits ((n&8)<<12)|((n&7)<<9) equals value·2^-14 for all 16 codes;
// E4M3 byte b → f16 bits ((b&0x80)<<8)|((b&0x7F)<<7) equals value·2^-8 for all 254 non-NaN bytes, subnormals
// included (exponent-0 bytes m·2^-9 become the f16 subnormals m·2^-17); the NaN bytes 0x7F/0xFF become ±1.875.
// E2M1 ±0.5 and E4M3 subnormals therefore rely on the device keeping f16 subnormals: the GPU half checks that.
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { composeWgsl } from '../../kernels/gpu/compose.js';
import { makeBindGroup, runDispatches } from '../../kernels/gpu/dispatch.js';
import { loadWgsl } from '../../kernels/gpu/wgsl_source.js';
import { E2M1_VALUES, e2m1ToF32, e4m3ToF32, f32ToE2m1, f32ToE4m3 } from '../../kernels/reference/quant_formats.js';
import { MatmulGemm } from '../../kernels/matmul_gemm.js';
import { Matvec, matvecVariantFor } from '../../kernels/matvec.js';
import { gemmRef } from '../../kernels/reference/gemm.js';
import { dequantRow } from '../../kernels/reference/matvec.js';
import {
  destroyWeight,
  randomHostWeight as randomMatvecWeight,
  uploadHostWeight as uploadMatvecWeight,
} from '../../kernels/reference/matvec_weights.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { checkGemm, readOutput, sentinelBuffer } from './matmul_gemm_check.js';
import { checkMatvec, randomX } from './matvec_check.js';

const gpu = await gpuOrSkip();

const NON_NAN_E4M3 = Array.from({ length: 256 }, (_, b) => b).filter((b) => (b & 0x7f) !== 0x7f);

const e2m1F16Bits = (n: number) => ((n & 8) << 12) | ((n & 7) << 9);
const e4m3F16Bits = (b: number) => ((b & 0x80) << 8) | ((b & 0x7f) << 7);

/** Same number including the sign of zero. */
const same = (a: number, b: number) => Object.is(a, b) || (a === b && a !== 0);

describe('E2M1 / E4M3 reference decoders and encoders (CPU)', () => {
  it('E2M1 table: sign bit 3, exponent bits 1..2 (bias 1), mantissa bit 0; subnormal code 1 = 0.5', () => {
    const derived = (c: number) => {
      const e = (c >> 1) & 3;
      const m = c & 1;
      const mag = e === 0 ? m * 0.5 : (1 + m / 2) * 2 ** (e - 1);
      return c & 8 ? -mag : mag;
    };
    expect(E2M1_VALUES.slice(0, 8)).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
    for (let c = 0; c < 16; c++) expect(same(e2m1ToF32(c), derived(c)), `code ${c}`).toBe(true);
    expect(Object.is(e2m1ToF32(8), -0)).toBe(true);
    expect(e2m1ToF32(0x1f)).toBe(e2m1ToF32(0xf)); // only the low nibble counts
  });

  it('E4M3 edge values: ±0, subnormals m·2^-9, smallest normal 2^-6, max ±448, NaN 0x7F/0xFF', () => {
    expect(Object.is(e4m3ToF32(0x00), 0)).toBe(true);
    expect(Object.is(e4m3ToF32(0x80), -0)).toBe(true);
    expect(e4m3ToF32(0x01)).toBe(2 ** -9); // smallest subnormal
    expect(e4m3ToF32(0x07)).toBe(7 * 2 ** -9); // largest subnormal
    expect(e4m3ToF32(0x87)).toBe(-7 * 2 ** -9);
    expect(e4m3ToF32(0x08)).toBe(2 ** -6); // smallest normal
    expect(e4m3ToF32(0x38)).toBe(1);
    expect(e4m3ToF32(0x7e)).toBe(448);
    expect(e4m3ToF32(0xfe)).toBe(-448);
    expect(e4m3ToF32(0x77)).toBe(240); // exponent 14: no infinities, exponent 15 is a normal binade
    expect(e4m3ToF32(0x78)).toBe(256);
    expect(e4m3ToF32(0x7f)).toBeNaN();
    expect(e4m3ToF32(0xff)).toBeNaN();
    // sign symmetry and strict monotonicity over the positive non-NaN bytes
    for (let b = 0; b < 0x7f; b++) {
      expect(same(e4m3ToF32(b | 0x80), -e4m3ToF32(b)), `byte ${b}`).toBe(true);
      if (b > 0) expect(e4m3ToF32(b)).toBeGreaterThan(e4m3ToF32(b - 1));
    }
  });

  it('encoders: every value round-trips; ties to even; saturation at ±448 / ±6; subnormal rounding', () => {
    for (const b of NON_NAN_E4M3) expect(f32ToE4m3(e4m3ToF32(b)), `byte ${b}`).toBe(b);
    for (let c = 0; c < 16; c++) expect(f32ToE2m1(E2M1_VALUES[c]), `code ${c}`).toBe(c === 8 ? 0 : c); // -0 → +0 code
    expect(f32ToE4m3(1e6)).toBe(0x7e);
    expect(f32ToE4m3(-1e6)).toBe(0xfe);
    expect(f32ToE4m3(464)).toBe(0x7e); // halfway to the (NaN) next code saturates
    expect(f32ToE4m3(2 ** -11)).toBe(0x00); // below half the smallest subnormal
    expect(f32ToE4m3(1.5 * 2 ** -9)).toBe(0x02); // tie between m=1 and m=2: even mantissa
    expect(f32ToE4m3(2.5 * 2 ** -9)).toBe(0x02);
    expect(f32ToE4m3(1.0625)).toBe(0x38); // tie between 1 and 1.125: even
    expect(f32ToE2m1(2.5)).toBe(4); // tie between 2 (code 4) and 3 (code 5): even
    expect(f32ToE2m1(0.25)).toBe(0); // tie between 0 and 0.5: even
    expect(f32ToE2m1(-100)).toBe(15);
  });

  it('GEMM tensor-core operands are exact in f16: every E2M1 × E4M3 block-scale product and every E4M3 value', () => {
    // matmul_gemm_subgroup_matrix.wgsl stages weight_8() as f16; exactness is what lets its tolerance omit a weight
    // rounding term for nvfp4 and per-tensor / per-channel fp8 (E4M3 subnormals m·2^-9 are normal f16 numbers).
    for (let c = 0; c < 16; c++)
      for (const b of NON_NAN_E4M3) {
        const v = E2M1_VALUES[c] * e4m3ToF32(b);
        expect(same(f16BitsToF32(f32ToF16Bits(v)), v), `code ${c} × byte ${b}`).toBe(true);
      }
    for (const b of NON_NAN_E4M3) expect(f16BitsToF32(f32ToF16Bits(e4m3ToF32(b)))).toBe(e4m3ToF32(b));
  });
});

describe('f16 bit-pattern shortcuts (CPU, exhaustive)', () => {
  it('E2M1: every code as f16 bits is value·2^-14', () => {
    for (let n = 0; n < 16; n++)
      expect(same(f16BitsToF32(e2m1F16Bits(n)), E2M1_VALUES[n] * 2 ** -14), `code ${n}`).toBe(true);
  });

  it('E4M3: every non-NaN byte as f16 bits is value·2^-8, subnormals included; NaN bytes are not preserved', () => {
    for (const b of NON_NAN_E4M3)
      expect(same(f16BitsToF32(e4m3F16Bits(b)), e4m3ToF32(b) * 2 ** -8), `byte ${b}`).toBe(true);
    // The brief's magnitude-only form (b & 0x7F) << 7 gives |value|·2^-8.
    for (const b of NON_NAN_E4M3) expect(f16BitsToF32((b & 0x7f) << 7)).toBe(Math.abs(e4m3ToF32(b)) * 2 ** -8);
    // exponent-0 bytes are subnormal on both sides: m·2^-9 → f16 subnormal m·2^-17
    for (let m = 1; m < 8; m++) expect(e4m3F16Bits(m) >> 10).toBe(0);
    expect(f16BitsToF32(e4m3F16Bits(0x7f))).toBe(1.875);
    expect(f16BitsToF32(e4m3F16Bits(0xff))).toBe(-1.875);
  });
});

const TEST_WGSL = `
@group(0) @binding(0) var<storage, read> inp: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//#include dequant
//#if F16
//#include dequant_f16
//#endif
@compute @workgroup_size(64) fn e2m1(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&inp)) { out[id.x] = e2m1_to_f32(inp[id.x]); }
}
@compute @workgroup_size(64) fn e4m3(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&inp)) { out[id.x] = e4m3_to_f32(inp[id.x]); }
}
@compute @workgroup_size(64) fn bf16(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&inp)) { out[id.x] = bf16_to_f32(inp[id.x]); }
}
//#if F16
@compute @workgroup_size(64) fn e2m1x8(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&inp)) {
    let m = e2m1x8_scaled(inp[id.x]);
    for (var j = 0u; j < 4u; j++) { out[8u * id.x + j] = m[0][j]; out[8u * id.x + 4u + j] = m[1][j]; }
  }
}
@compute @workgroup_size(64) fn e4m3x4(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&inp)) {
    let v = e4m3x4_scaled(inp[id.x]);
    for (var j = 0u; j < 4u; j++) { out[4u * id.x + j] = v[j]; }
  }
}
//#endif
`;

describe.skipIf(!gpu)('dequant.wgsl / dequant_f16.wgsl on the device', () => {
  const g = gpu!;
  const hasF16 = g?.caps.hasF16 ?? false;
  const code = () =>
    (hasF16 ? 'enable f16;\n' : '') +
    composeWgsl(
      TEST_WGSL,
      { F16: hasF16 },
      {
        dequant: loadWgsl(new URL('../../kernels/dequant.wgsl', import.meta.url)),
        dequant_f16: loadWgsl(new URL('../../kernels/dequant_f16.wgsl', import.meta.url)),
      },
    );

  /** Runs entry point `entry` over `input` words; returns `outPerWord` f32 per word. */
  async function decode(entry: string, input: number[], outPerWord = 1): Promise<Float32Array> {
    const pipeline = await g.pipelines.get({ label: `dequant_test_${entry}`, code: code(), entryPoint: entry });
    const inp = createBufferFrom(g, 'inp', Uint32Array.from(input));
    const out = createBuffer(g, 'out', input.length * outPerWord * 4);
    const bindGroup = makeBindGroup(g, entry, pipeline, [inp, out]);
    await runDispatches(g, [
      {
        label: entry,
        encode(pass) {
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bindGroup);
          pass.dispatchWorkgroups(Math.ceil(input.length / 64));
        },
      },
    ]);
    const result = new Float32Array(await readBuffer(g, out));
    inp.destroy();
    out.destroy();
    return result;
  }

  const expectExact = (got: Float32Array, want: number[], what: (i: number) => string) => {
    const bad = want.map((w, i) => (same(got[i], w) ? null : `${what(i)}: got ${got[i]}, want ${w}`)).filter(Boolean);
    expect(bad.slice(0, 5), `${bad.length} mismatches`).toEqual([]);
  };

  it('e2m1_to_f32: all 16 codes', async () => {
    const codes = Array.from({ length: 16 }, (_, c) => c);
    expectExact(await decode('e2m1', codes), E2M1_VALUES, (i) => `code ${i}`);
  });

  it('e4m3_to_f32: all 254 non-NaN bytes (0, -0, subnormals, ±448)', async () => {
    const got = await decode('e4m3', NON_NAN_E4M3);
    expectExact(got, NON_NAN_E4M3.map(e4m3ToF32), (i) => `byte 0x${NON_NAN_E4M3[i].toString(16)}`);
    expect(Math.max(...got)).toBe(448);
  });

  it('bf16_to_f32: edge values and samples', async () => {
    const samples = [0x0000, 0x8000, 0x0001, 0x807f, 0x3f80, 0xbf80, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x4049, 0x3c00];
    for (let i = 0; i < 500; i++) samples.push((i * 40503 + 17) & 0xffff);
    const bits = samples.filter((b) => !((b & 0x7f80) === 0x7f80 && b & 0x7f)); // NaN payloads are not compared
    // the upper half of the word must be ignored
    expectExact(
      await decode(
        'bf16',
        bits.map((b) => b | 0xabcd0000),
      ),
      bits.map(bf16BitsToF32),
      (i) => `bits ${bits[i]}`,
    );
  });

  it.skipIf(!hasF16)('e2m1x8_scaled: every code in every nibble position equals value·2^-14', async () => {
    const words: number[] = [];
    for (let c = 0; c < 16; c++)
      for (let pos = 0; pos < 8; pos++)
        words.push(((c << (4 * pos)) | (((c + 5) & 15) << (4 * ((pos + 3) % 8)))) >>> 0);
    const got = await decode('e2m1x8', words, 8);
    const want = words.flatMap((w) =>
      Array.from({ length: 8 }, (_, j) => E2M1_VALUES[(w >>> (4 * j)) & 15] * 2 ** -14),
    );
    expectExact(got, want, (i) => `word ${i >> 3} code ${i & 7}`);
  });

  it.skipIf(!hasF16)('e4m3x4_scaled: every non-NaN byte in every position equals value·2^-8', async () => {
    const words: number[] = [];
    for (let i = 0; i < NON_NAN_E4M3.length; i++) {
      const b = (j: number) => NON_NAN_E4M3[(i + 67 * j) % NON_NAN_E4M3.length];
      words.push((b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0);
    }
    const got = await decode('e4m3x4', words, 4);
    const want = words.flatMap((w) => Array.from({ length: 4 }, (_, j) => e4m3ToF32((w >>> (8 * j)) & 255) * 2 ** -8));
    expectExact(got, want, (i) => `word ${i >> 2} byte ${i & 3}`);
  });
});

// The same edge values inside the matmul kernels: NVFP4 block scales cycling through ±0, E4M3 subnormals, the
// smallest normal, 1 and 448 (with every E2M1 code), FP8 weights cycling through all 254 non-NaN bytes; matvec with
// both decodes (f16 bit patterns and arithmetic) and the tiled GEMM, against the f64 references (tolerances as in
// matvec.test.ts / matmul_gemm.test.ts).
const EDGE_SCALES = [0x00, 0x80, 0x01, 0x02, 0x07, 0x08, 0x38, 0x7e, 0x81, 0x77];

describe.skipIf(!gpu)('edge values through matvec and GEMM', () => {
  const g = gpu!;
  const [N, K] = [10, 256];

  function edgeWeight(format: 'nvfp4' | 'fp8') {
    const host = randomMatvecWeight(format, 1, N, K, { seed: 3 });
    if (format === 'nvfp4') {
      for (let i = 0; i < host.blockScales!.length; i++) host.blockScales![i] = EDGE_SCALES[i % EDGE_SCALES.length];
      for (let i = 0; i < host.data.length; i++) host.data[i] = (i * 17) & 0xff; // every code in both nibbles
      host.globalScales![0] = 1;
    } else {
      for (let i = 0; i < host.data.length; i++) host.data[i] = NON_NAN_E4M3[(i * 7) % NON_NAN_E4M3.length];
      host.scales![0] = 1;
    }
    return host;
  }

  for (const format of ['nvfp4', 'fp8'] as const) {
    it(`${format}: matvec with f16 and arithmetic decode`, async () => {
      const host = edgeWeight(format);
      const weight = uploadMatvecWeight(g, host, `edge.${format}`);
      // f16 decode with subgroups, arithmetic decode with the workgroup reduction: the work split of matvec.test.ts
      // (mTile 4), so the pipelines are shared with that suite
      for (const f16Decode of g.caps.hasF16 ? [true, false] : [false]) {
        const subgroups = f16Decode && g.caps.hasSubgroups;
        const tuning = { rows: 2, tpk: 16, rowGroups: 4 };
        const v = matvecVariantFor(g, weight, { act: 'f32', out: 'f32', f16Decode, subgroups, mTile: 4, tuning });
        const kernel = await Matvec.create(g, v);
        expect(kernel.variant.f16Decode).toBe(f16Decode);
        const r = await checkMatvec(g, { kernel, host, weight, M: 2, x: randomX(2 * K, 5) });
        expect(r.ok, r.message).toBe(true);
      }
      destroyWeight(weight);
    });

    it(`${format}: tiled GEMM`, async () => {
      const host = edgeWeight(format);
      const weight = uploadMatvecWeight(g, host, `edge.${format}`);
      const kernel = await MatmulGemm.create(g, { format, path: 'tiled' }); // the default tile, as matmul_gemm.test.ts
      const M = 3;
      const x = randomX(M * K, 9);
      const y = sentinelBuffer(g, 'y', M * N, 'f32');
      await runDispatches(g, [kernel.bind({ x: createBufferFrom(g, 'x', x), weight, y }, { M })]);
      const out = await readOutput(g, y, M * N, 'f32');
      const dense = new Float64Array(N * K);
      for (let n = 0; n < N; n++) dense.set(dequantRow(host, 0, n), n * K);
      const ref = gemmRef(x, dense, M, N, K);
      const r = checkGemm(out.values, ref.y, ref.absY, { K, f16Operands: false, f16Output: false }, kernel.name);
      expect(r.ok, r.message).toBe(true);
      expect(out.guardOk).toBe(true);
      destroyWeight(weight);
    });
  }
});

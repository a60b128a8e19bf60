// The WGSL decoders (kernels/dequant.wgsl, kernels/dequant_f16.wgsl) against the CPU reference, bit for bit:
// all 16 E2M1 codes, all 254 non-NaN E4M3 bytes (0, -0, subnormals, ±448), bf16 samples (incl. ±0, subnormals,
// ±inf), and the f16 bit-pattern shortcuts both on the CPU (exhaustive math) and on the device.
// Finding on the shortcuts: E2M1 nibble n → f16 bits ((n&8)<<12)|((n&7)<<9) equals value·2^-14 for all 16 codes;
// E4M3 byte b → f16 bits ((b&0x80)<<8)|((b&0x7F)<<7) equals value·2^-8 for all 254 non-NaN bytes, subnormals
// included (exponent-0 bytes m·2^-9 become the f16 subnormals m·2^-17); the NaN bytes 0x7F/0xFF become ±1.875.
// E2M1 ±0.5 and E4M3 subnormals therefore rely on the device keeping f16 subnormals: the GPU half checks that.
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32 } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer } from '../../kernels/gpu/buffers.js';
import { composeWgsl } from '../../kernels/gpu/compose.js';
import { makeBindGroup, runDispatches } from '../../kernels/gpu/dispatch.js';
import { loadWgsl } from '../../kernels/gpu/wgsl_source.js';
import { E2M1_VALUES, e4m3ToF32 } from '../../kernels/reference/quant_formats.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();

const NON_NAN_E4M3 = Array.from({ length: 256 }, (_, b) => b).filter((b) => (b & 0x7f) !== 0x7f);

const e2m1F16Bits = (n: number) => ((n & 8) << 12) | ((n & 7) << 9);
const e4m3F16Bits = (b: number) => ((b & 0x80) << 8) | ((b & 0x7f) << 7);

/** Same number including the sign of zero. */
const same = (a: number, b: number) => Object.is(a, b) || (a === b && a !== 0);

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

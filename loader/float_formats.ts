// Bit-level conversions between the small float formats checkpoints use (bf16, f16, e4m3, e2m1) and f32.
// Byte arrays are little-endian, as safetensors stores them.
import { LoaderError } from '../core/errors.js';
import type { SafetensorsDtype } from './dtypes.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = bits << 16;
  return f32Scratch[0];
}

/** Rounds to nearest, ties to even, as torch's `.to(torch.bfloat16)` does; NaN stays a quiet NaN. */
export function f32ToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float8_e4m3fn: bias 7, no infinities, 0x7f/0xff are NaN, largest finite 448. */
function e4m3ToF32Slow(byte: number): number {
  const sign = byte & 0x80 ? -1 : 1;
  const exp = (byte >>> 3) & 0xf;
  const mant = byte & 0x7;
  if (exp === 0xf && mant === 0x7) return Number.NaN;
  if (exp === 0) return sign * (mant / 8) * 2 ** -6;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

export const e4m3Table: Float32Array = Float32Array.from({ length: 256 }, (_, b) => e4m3ToF32Slow(b));

/** E2M1 magnitudes for codes 0..7; bit 3 is the sign. */
export const e2m1Magnitudes: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

export const e2m1Table: Float32Array = Float32Array.from({ length: 16 }, (_, c) =>
  c & 8 ? -e2m1Magnitudes[c & 7] : e2m1Magnitudes[c & 7],
);

/** Decodes a small float tensor (scales, norms) to f32 values. */
export function decodeFloats(data: Uint8Array, dtype: SafetensorsDtype, what: string): Float32Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (dtype) {
    case 'F32':
      return Float32Array.from({ length: data.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
    case 'BF16':
      return Float32Array.from({ length: data.byteLength / 2 }, (_, i) => bf16BitsToF32(view.getUint16(i * 2, true)));
    case 'F16':
      return Float32Array.from({ length: data.byteLength / 2 }, (_, i) => f16BitsToF32(view.getUint16(i * 2, true)));
    case 'F8_E4M3':
      return Float32Array.from(data, (b) => e4m3Table[b]);
    default:
      throw new LoaderError(
        'DAWN_ERR_LOADER_DTYPE',
        `${what}: expected a float dtype (F32, BF16, F16), found ${dtype}`,
      );
  }
}

/** Converts an F16 or F32 tensor's bytes to bf16 bytes (BF16 input is returned as is). */
export function toBf16Bytes(data: Uint8Array, dtype: SafetensorsDtype, what: string): Uint8Array {
  if (dtype === 'BF16') return data;
  const values = decodeFloats(data, dtype, what);
  return f32ArrayToBf16Bytes(values);
}

export function f32ArrayToBf16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, f32ToBf16Bits(values[i]), true);
  return out;
}

export function f32ArrayToBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

export function bytesToF32Array(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

export function bf16BytesToF32Array(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 2 }, (_, i) => bf16BitsToF32(view.getUint16(i * 2, true)));
}

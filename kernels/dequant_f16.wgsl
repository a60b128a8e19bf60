// Fast decoding through f16 bit patterns (a //#include snippet; the kernel must `enable f16`). Integer ops place
// the code's bits into f16 fields, so one bitcast + one f16x2 -> f32x2 conversion decodes two values:
//   E2M1 nibble n:  f16 bits ((n & 8) << 12) | ((n & 7) << 9)       = value · 2^-14
//   E4M3 byte b:    f16 bits ((b & 0x80) << 8) | ((b & 0x7F) << 7)  = value · 2^-8 (also for exponent-0 bytes)
// Checked exhaustively in test/kernels/dequant.test.ts. E2M1 ±0.5 and E4M3 exponent-0 bytes land on f16
// subnormals, so these need a device that keeps f16 subnormals: lavapipe does (the test checks it on every run);
// NVIDIA hardware keeps f16 subnormals but Tint declares no float-controls mode, so the same test must pass on the
// H100 before the fast path is trusted there (docs/KERNELS.md). E4M3 NaN (0x7F/0xFF) decodes to ±1.875 here: the
// loader rejects NaN scales.
// Callers fold the constant factors back in once per row: E2M1_F16_FACTOR, E4M3_F16_FACTOR.

const E2M1_F16_FACTOR: f32 = 16384.0; // 2^14
const E4M3_F16_FACTOR: f32 = 256.0; // 2^8

// Nibbles 0 and 4 of t (bits 0..3 and 16..19) -> their values · 2^-14.
fn e2m1x2_scaled(t: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<vec2<f16>>(((t << 9u) & 0x0E000E00u) | ((t << 12u) & 0x80008000u)));
}

// The 8 codes of a word (code j at bits 4j..4j+3) · 2^-14: column 0 = codes 0..3, column 1 = codes 4..7.
fn e2m1x8_scaled(w: u32) -> mat2x4<f32> {
  let p0 = e2m1x2_scaled(w);
  let p1 = e2m1x2_scaled(w >> 4u);
  let p2 = e2m1x2_scaled(w >> 8u);
  let p3 = e2m1x2_scaled(w >> 12u);
  return mat2x4<f32>(vec4<f32>(p0.x, p1.x, p2.x, p3.x), vec4<f32>(p0.y, p1.y, p2.y, p3.y));
}

// Bytes 0 and 2 of t -> their E4M3 values · 2^-8.
fn e4m3x2_scaled(t: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<vec2<f16>>(((t & 0x007F007Fu) << 7u) | ((t & 0x00800080u) << 8u)));
}

// The 4 E4M3 bytes of a word (byte i at bits 8i..8i+7) · 2^-8, in byte order.
fn e4m3x4_scaled(w: u32) -> vec4<f32> {
  let a = e4m3x2_scaled(w);
  let b = e4m3x2_scaled(w >> 8u);
  return vec4<f32>(a.x, b.x, a.y, b.y);
}

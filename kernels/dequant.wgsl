// Shared decoding of packed weight formats (a //#include snippet; see kernels/weight_format.ts for layouts).
// WGSL has no FP4/FP8/BF16 types: decode with integer ops. Valid checkpoints carry no E4M3 NaN (0x7F/0xFF):
// the loader rejects them, so this decoder does not special-case them.

fn bf16_to_f32(bits: u32) -> f32 {
  return bitcast<f32>((bits & 0xFFFFu) << 16u);
}

// E2M1 nibble -> f32: magnitudes [0, .5, 1, 1.5, 2, 3, 4, 6], bit 3 = sign.
fn e2m1_to_f32(code: u32) -> f32 {
  let e = (code >> 1u) & 3u;
  let m = code & 1u;
  let normal = bitcast<f32>(((e + 126u) << 23u) | (m << 22u)); // (1 + m/2) · 2^(e-1)
  let mag = select(f32(m) * 0.5, normal, e != 0u);
  return select(mag, -mag, (code & 8u) != 0u);
}

// E4M3 byte -> f32, subnormals included (exponent 0: m · 2^-9).
fn e4m3_to_f32(byte: u32) -> f32 {
  let e = (byte >> 3u) & 0xFu;
  let m = byte & 7u;
  let normal = bitcast<f32>(((e + 120u) << 23u) | (m << 20u)); // (1 + m/8) · 2^(e-7)
  let mag = select(f32(m) * 0.001953125, normal, e != 0u);
  return select(mag, -mag, (byte & 0x80u) != 0u);
}

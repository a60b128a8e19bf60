// kv_cache: the paged KV cache's element formats, a //#include snippet for kv_cache_write, attention_decode and
// attention_prefill (the layout itself is described, and indexed on the host, in kernels/kv_cache.ts).
// Elements travel in units of 8 (a head row of D elements is D/8 units):
//   KV_F32   unit = 2 × vec4<u32> (f32 bits)                                 kv_word_t = vec4<u32>
//   KV_BF16  unit = 1 × vec4<u32>, element 2i in the low half of u32 i       kv_word_t = vec4<u32>
//   KV_FP8   unit = 1 × vec2<u32>, E4M3, element 4i+b in byte b of u32 i     kv_word_t = vec2<u32>
// FP8 holds e4m3(x · inv_scale) with a per-tensor scale (k_scale, v_scale); readers multiply the scale back in
// (attention folds it into q and into the output, so the loops below never see it).
// The includer declares k_cache and v_cache as array<kv_word_t> and includes `dequant` (e4m3_to_f32) for KV_FP8.

struct KvUnit {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

// f32 -> bf16 bits, round to nearest even (finite inputs; matches core/float16.ts f32ToBf16Bits).
fn f32_to_bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn bf16x2_to_f32(w: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

// f32 -> E4M3 byte: round to nearest even, saturate at ±448 (the "fn" format has no infinity), keep the sign of
// zero. Below 2^-6 the grid is m·2^-9 (subnormals); m = 8 lands on code 8 = 2^-6, the first normal, as it should.
fn f32_to_e4m3(x: f32) -> u32 {
  let sign = (bitcast<u32>(x) >> 24u) & 0x80u;
  let a = min(abs(x), 448.0);
  let sub = u32(round(a * 512.0)); // WGSL round() is half-to-even
  let b = bitcast<u32>(a);
  let r = b + 0x7ffffu + ((b >> 20u) & 1u); // keep 3 mantissa bits, ties to even; a carry bumps the exponent
  let normal = ((((r >> 23u) - 120u) << 3u) | ((r >> 20u) & 7u)) & 0x7fu;
  return sign | select(normal, sub, a < 0.015625);
}

fn e4m3x4_to_f32(w: u32) -> vec4<f32> {
  return vec4<f32>(
    e4m3_to_f32(w & 0xffu),
    e4m3_to_f32((w >> 8u) & 0xffu),
    e4m3_to_f32((w >> 16u) & 0xffu),
    e4m3_to_f32(w >> 24u),
  );
}

//#if KV_BF16
fn kv_unpack(w: kv_word_t) -> KvUnit {
  return KvUnit(
    vec4<f32>(bf16x2_to_f32(w.x), bf16x2_to_f32(w.y)),
    vec4<f32>(bf16x2_to_f32(w.z), bf16x2_to_f32(w.w)),
  );
}

fn bf16_pair(a: f32, b: f32) -> u32 {
  return f32_to_bf16_bits(a) | (f32_to_bf16_bits(b) << 16u);
}

fn kv_pack(u: KvUnit, _inv_scale: f32) -> kv_word_t {
  return vec4<u32>(bf16_pair(u.lo.x, u.lo.y), bf16_pair(u.lo.z, u.lo.w), bf16_pair(u.hi.x, u.hi.y), bf16_pair(u.hi.z, u.hi.w));
}
//#endif

//#if KV_FP8
fn kv_unpack(w: kv_word_t) -> KvUnit {
  return KvUnit(e4m3x4_to_f32(w.x), e4m3x4_to_f32(w.y));
}

fn kv_pack4(v: vec4<f32>) -> u32 {
  return f32_to_e4m3(v.x) | (f32_to_e4m3(v.y) << 8u) | (f32_to_e4m3(v.z) << 16u) | (f32_to_e4m3(v.w) << 24u);
}

fn kv_pack(u: KvUnit, inv_scale: f32) -> kv_word_t {
  return vec2<u32>(kv_pack4(u.lo * inv_scale), kv_pack4(u.hi * inv_scale));
}
//#endif

// Unit i of the K / V cache (unit indices come from k_unit_index / v_unit_index in the kernels).
fn load_k_unit(i: u32) -> KvUnit {
//#if KV_F32
  return KvUnit(bitcast<vec4<f32>>(k_cache[2u * i]), bitcast<vec4<f32>>(k_cache[2u * i + 1u]));
//#else
  return kv_unpack(k_cache[i]);
//#endif
}

fn load_v_unit(i: u32) -> KvUnit {
//#if KV_F32
  return KvUnit(bitcast<vec4<f32>>(v_cache[2u * i]), bitcast<vec4<f32>>(v_cache[2u * i + 1u]));
//#else
  return kv_unpack(v_cache[i]);
//#endif
}

// Where units live: K is unit-major inside a (block, kv head) tile ([D/8][16] units) so that threads that each own
// one token read consecutive units; V is token-major ([16][D/8] units) so that threads that each own a unit of the
// head dimension read one contiguous row per token.
fn k_unit_index(block: u32, kv_head: u32, num_kv_heads: u32, offset: u32, unit: u32) -> u32 {
  return ((block * num_kv_heads + kv_head) * UNITS_PER_ROW + unit) * 16u + offset;
}

fn v_unit_index(block: u32, kv_head: u32, num_kv_heads: u32, offset: u32, unit: u32) -> u32 {
  return ((block * num_kv_heads + kv_head) * 16u + offset) * UNITS_PER_ROW + unit;
}

// kv_cache_write: new keys and values -> the paged KV cache at their slots (vLLM's reshape_and_cache).
// k, v: (T, Hkv, D) f32, token rows `k_token_stride4` / `v_token_stride4` vec4s apart (a fused QKV buffer works)
// slot_mapping: (T) u32, slot = block·16 + offset; 0xffffffff = padding token, not written
// k_cache, v_cache: (numBlocks, Hkv, 16, D) in the KV dtype, tiles laid out as kv_cache.wgsl says
// Grid: x = ceil(Hkv·D/8 / WG_SIZE), y = T. One thread per 8-element unit of one (token, kv head): it writes whole
// words, so no two threads ever share a word (bf16 and fp8 pack several elements per u32).
// Variants (flags): KV_F32 | KV_BF16 | KV_FP8 (+ alias kv_word_t, const UNITS_PER_ROW from the wrapper).

struct Params {
  num_kv_heads: u32,
  k_token_stride4: u32, // vec4s between consecutive tokens of k
  v_token_stride4: u32,
  _pad: u32,
  k_inv_scale: f32, // 1 / k_scale (fp8; 1 otherwise): a correctly rounded multiply, so the host can reproduce it
  v_inv_scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> slot_mapping: array<u32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<kv_word_t>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<kv_word_t>;

override WG_SIZE: u32 = 64;

//#include dequant
//#include kv_cache

fn store_unit_k(i: u32, u: KvUnit) {
//#if KV_F32
  k_cache[2u * i] = bitcast<vec4<u32>>(u.lo);
  k_cache[2u * i + 1u] = bitcast<vec4<u32>>(u.hi);
//#else
  k_cache[i] = kv_pack(u, params.k_inv_scale);
//#endif
}

fn store_unit_v(i: u32, u: KvUnit) {
//#if KV_F32
  v_cache[2u * i] = bitcast<vec4<u32>>(u.lo);
  v_cache[2u * i + 1u] = bitcast<vec4<u32>>(u.hi);
//#else
  v_cache[i] = kv_pack(u, params.v_inv_scale);
//#endif
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let token = wid.y;
  let idx = wid.x * WG_SIZE + lid; // kv_head · UNITS_PER_ROW + unit
  if (idx >= params.num_kv_heads * UNITS_PER_ROW) {
    return;
  }
  let slot = slot_mapping[token];
  if (slot == 0xffffffffu) {
    return;
  }
  let kv_head = idx / UNITS_PER_ROW;
  let unit = idx % UNITS_PER_ROW;
  let block = slot / 16u;
  let offset = slot % 16u;
  let ks = token * params.k_token_stride4 + idx * 2u;
  let vs = token * params.v_token_stride4 + idx * 2u;
  store_unit_k(k_unit_index(block, kv_head, params.num_kv_heads, offset, unit), KvUnit(k[ks], k[ks + 1u]));
  store_unit_v(v_unit_index(block, kv_head, params.num_kv_heads, offset, unit), KvUnit(v[vs], v[vs + 1u]));
}

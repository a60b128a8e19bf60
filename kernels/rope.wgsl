// rope: per-head q_norm / k_norm (RMSNorm over head_dim, `weight * x`) fused with interleaved M-RoPE, in place on
// the q and k heads of a token-major qkv buffer (f32); optionally (CACHE_WRITE) the rotated k and the raw v go
// straight into the paged KV cache at slot_mapping, which saves the separate kv_cache_write dispatch.
// qkv:       token rows `token_stride` f32 apart; q head h at q_offset + h·D, k head at k_offset, v head at v_offset
// positions: u32 [3, T] (t, h, w rows, T = this step's token count from the TokenStep uniform)
// inv_freq:  f32 [D/2], theta^(-2j/D) as HF computes it in f32 (the host uploads it)
// Frequency j uses the h position when j%3==1 and j < 3·s_h, the w position when j%3==2 and j < 3·s_w, else t;
// rotate_half pairs element i with i + D/2, so each thread owns one frequency: out_i = x_i·c − x_{i+D/2}·s,
// out_{i+D/2} = x_{i+D/2}·c + x_i·s.
// Grid: x = Hq + Hkv (+ Hkv v heads with CACHE_WRITE), y = T. One workgroup per (token, head), D/2 threads.
// The wrapper prepends HEAD_DIM / HALF / UNITS_PER_ROW constants (and kv_word_t with CACHE_WRITE).

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  token_stride: u32,
  q_offset: u32,
  k_offset: u32,
  v_offset: u32,
  h_end: u32, // 3·s_h: frequencies below this with j%3==1 use the h position
  w_end: u32, // 3·s_w
  eps: f32,
  k_inv_scale: f32, // CACHE_WRITE with fp8: 1 / k_scale
  v_inv_scale: f32,
  half: u32, // = HALF, as the norm's loop bound: unrolled, its barriers slow lavapipe's compile several-fold
}

struct Step {
  num_tokens: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read> q_norm: array<f32>;
@group(0) @binding(5) var<storage, read> k_norm: array<f32>;
@group(0) @binding(6) var<storage, read> inv_freq: array<f32>;
//#if CACHE_WRITE
@group(0) @binding(7) var<storage, read> slot_mapping: array<u32>;
@group(0) @binding(8) var<storage, read_write> k_cache: array<kv_word_t>;
@group(0) @binding(9) var<storage, read_write> v_cache: array<kv_word_t>;

//#include dequant
//#include kv_cache

fn store_k(i: u32, u: KvUnit) {
//#if KV_F32
  k_cache[2u * i] = bitcast<vec4<u32>>(u.lo);
  k_cache[2u * i + 1u] = bitcast<vec4<u32>>(u.hi);
//#else
  k_cache[i] = kv_pack(u, params.k_inv_scale);
//#endif
}

fn store_v(i: u32, u: KvUnit) {
//#if KV_F32
  v_cache[2u * i] = bitcast<vec4<u32>>(u.lo);
  v_cache[2u * i + 1u] = bitcast<vec4<u32>>(u.hi);
//#else
  v_cache[i] = kv_pack(u, params.v_inv_scale);
//#endif
}
//#endif

var<workgroup> red: array<f32, HALF>;
var<workgroup> row: array<f32, HEAD_DIM>;

// cos and sin of an f32 angle with our own range reduction and Cephes' minimax polynomials (~1 ulp): WGSL's
// sin/cos only promise 2^-11 absolute error, and only inside [-π, π], while rope angles reach the position.
// k·C1 is exact for |k| < 2^16 (C1 has 8 significant bits), so angles up to ~1e5 rad reduce without loss.
fn cos_sin(a: f32) -> vec2<f32> {
  let k = round(a * 0.636619772367581343);
  var r = a - k * 1.5703125;
  r = r - k * 4.837512969970703125e-4;
  r = r - k * 7.54978995489188216e-8;
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (i32(k) & 3) {
    case 0: { return vec2<f32>(c, s); }
    case 1: { return vec2<f32>(-s, c); }
    case 2: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

@compute @workgroup_size(HALF)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) i: u32) {
  let head = wid.x;
  let tok = wid.y;
  let hq = params.num_q_heads;
  let hkv = params.num_kv_heads;
  let row_base = tok * params.token_stride;
//#if CACHE_WRITE
  if (head >= hq + hkv) {
    // A v head: straight into the cache, one 8-element unit per thread.
    let slot = slot_mapping[tok];
    if (i < UNITS_PER_ROW && slot != 0xffffffffu) {
      let kvh = head - hq - hkv;
      let src = row_base + params.v_offset + kvh * HEAD_DIM + i * 8u;
      let u = KvUnit(
        vec4<f32>(qkv[src], qkv[src + 1u], qkv[src + 2u], qkv[src + 3u]),
        vec4<f32>(qkv[src + 4u], qkv[src + 5u], qkv[src + 6u], qkv[src + 7u]),
      );
      store_v(v_unit_index(slot / 16u, kvh, hkv, slot % 16u, i), u);
    }
    return; // uniform: every thread of a v-head workgroup leaves here
  }
//#endif
  let is_q = head < hq;
  let base = row_base + select(params.k_offset + (head - hq) * HEAD_DIM, params.q_offset + head * HEAD_DIM, is_q);
  let x1 = qkv[base + i];
  let x2 = qkv[base + i + HALF];

  red[i] = x1 * x1 + x2 * x2;
  workgroupBarrier();
  for (var s = params.half / 2u; s > 0u; s /= 2u) {
    if (i < s) {
      red[i] += red[i + s];
    }
    workgroupBarrier();
  }
  let r = inverseSqrt(red[0] / f32(HEAD_DIM) + params.eps);
  var w1: f32;
  var w2: f32;
  if (is_q) {
    w1 = q_norm[i];
    w2 = q_norm[i + HALF];
  } else {
    w1 = k_norm[i];
    w2 = k_norm[i + HALF];
  }
  let y1 = w1 * (x1 * r);
  let y2 = w2 * (x2 * r);

  var axis = 0u;
  if (i % 3u == 1u && i < params.h_end) {
    axis = 1u;
  } else if (i % 3u == 2u && i < params.w_end) {
    axis = 2u;
  }
  let pos = positions[axis * step.num_tokens + tok];
  let cs = cos_sin(f32(pos) * inv_freq[i]);
  let o1 = y1 * cs.x - y2 * cs.y;
  let o2 = y2 * cs.x + y1 * cs.y;
  qkv[base + i] = o1;
  qkv[base + i + HALF] = o2;
//#if CACHE_WRITE
  if (!is_q) {
    row[i] = o1;
    row[i + HALF] = o2;
    workgroupBarrier();
    let slot = slot_mapping[tok];
    if (i < UNITS_PER_ROW && slot != 0xffffffffu) {
      let j = i * 8u;
      let u = KvUnit(
        vec4<f32>(row[j], row[j + 1u], row[j + 2u], row[j + 3u]),
        vec4<f32>(row[j + 4u], row[j + 5u], row[j + 6u], row[j + 7u]),
      );
      store_k(k_unit_index(slot / 16u, head - hq, hkv, slot % 16u, i), u);
    }
  }
//#endif
}

// vision_attention: full (non-causal) attention within segments for the vision tower, reading q, k and v straight
// from the fused qkv rows (no KV cache).
// qkv:        f32 [T, 3, H, D] as vec4s (D a multiple of 4): q heads, k heads, v heads of each token
// cu_seqlens: u32 [num_segs + 1]: segment s (one image frame) owns tokens [cu_seqlens[s], cu_seqlens[s+1])
// out:        f32 [T, H, D]
// Grid: x = ceil(T / BQ) + num_segs (an upper bound on the tiles; extra workgroups leave), y = H.
// A workgroup takes BQ query rows of one segment and one head and walks the segment's keys in tiles of BK with an
// online softmax in f32 (flash-attention style): K tile into workgroup memory, scores, their exponentials (each
// thread its own keys) while the V tile replaces K, rescale and accumulate. TPR threads share a query row: each
// holds the whole (pre-scaled) q row in registers, scores KPT = BK/TPR keys of a tile and owns DPT4 = D/4/TPR vec4s
// of the output row.
// Header from the wrapper: HEAD_DIM, BQ, TPR, KPT, WG_SIZE = BQ·TPR, and the loop bounds n_d4(), n_dpt4() (over q
// and acc: the constants where the compiler should unroll them so both stay in registers, the same numbers read
// from params where it should not: lavapipe compiles unrolled loops many times slower), n_kpt() and n_bk() (over
// keys, always from params).

struct Params {
  heads: u32,
  num_segs: u32,
  scale: f32, // log2(e)/sqrt(D), applied to q on load: scores in the log2 domain, softmax with exp2
  d4: u32, // D/4 and
  dpt4: u32, // D/4/TPR and
  kpt: u32, // keys per thread and
  bk: u32, // keys per tile, for the loop bounds that are not unrolled
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cu_seqlens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

const D4: u32 = HEAD_DIM / 4u;
const DPT4: u32 = D4 / TPR;
const BK: u32 = KPT * TPR;
const MASKED: f32 = -3.0e38; // a masked score (finite: WGSL has no infinity literal)

var<workgroup> kv_sh: array<vec4<f32>, BK * D4>; // this tile's K, then its V, as [BK tokens][D]
var<workgroup> s_sh: array<f32, BQ * BK>; // scores (log2 domain)
var<workgroup> p_sh: array<f32, BQ * BK>; // their exponentials

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let head = wid.y;
  // Which segment this tile belongs to: tiles are numbered segment by segment.
  var tile = wid.x;
  var seg = 0u;
  var found = false;
  for (var s = 0u; s < params.num_segs; s++) {
    let tiles = (cu_seqlens[s + 1u] - cu_seqlens[s] + BQ - 1u) / BQ;
    if (tile < tiles) {
      seg = s;
      found = true;
      break;
    }
    tile -= tiles;
  }
  if (!found) {
    return; // uniform per workgroup: every barrier below is reached by all or none
  }
  let s0 = cu_seqlens[seg];
  let s1 = cu_seqlens[seg + 1u];
  let row4 = 3u * params.heads * D4; // vec4s per token row
  let r = lid / TPR;
  let c = lid % TPR;
  let qrow = min(s0 + tile * BQ + r, s1 - 1u); // rows past the segment compute a copy of its last row, unwritten
  var q: array<vec4<f32>, D4>;
  for (var d = 0u; d < n_d4(); d++) {
    q[d] = qkv[qrow * row4 + head * D4 + d] * params.scale;
  }
  let k_off = params.heads * D4 + head * D4;
  let v_off = 2u * params.heads * D4 + head * D4;
  var m = MASKED;
  var l = 0.0; // this thread's share of the row's softmax denominator: the sum over its own keys
  var acc: array<vec4<f32>, DPT4>;
  for (var k0 = s0; k0 < s1; k0 += BK) {
    workgroupBarrier(); // the previous tile's V and p reads are done
    for (var i = lid; i < BK * D4; i += WG_SIZE) {
      let key = k0 + i / D4;
      var v = vec4<f32>(0.0);
      if (key < s1) {
        v = qkv[key * row4 + k_off + i % D4];
      }
      kv_sh[i] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < n_kpt(); kk++) {
      let j = c + kk * TPR;
      var s = 0.0;
      for (var d = 0u; d < n_d4(); d++) {
        s += dot(q[d], kv_sh[j * D4 + d]);
      }
      s_sh[r * BK + j] = select(MASKED, s, k0 + j < s1);
    }
    workgroupBarrier();
    // Every thread of the row finds the tile's max; each then exponentiates only its own KPT scores (not all BK).
    var m_blk = MASKED;
    for (var j = 0u; j < n_bk(); j++) {
      m_blk = max(m_blk, s_sh[r * BK + j]);
    }
    let m_new = max(m, m_blk);
    let alpha = exp2(m - m_new);
    l *= alpha;
    for (var kk = 0u; kk < n_kpt(); kk++) {
      let j = c + kk * TPR;
      let sj = s_sh[r * BK + j];
      let p = select(0.0, exp2(sj - m_new), sj > -1.0e38);
      l += p;
      p_sh[r * BK + j] = p;
    }
    for (var i = lid; i < BK * D4; i += WG_SIZE) {
      let key = k0 + i / D4;
      var v = vec4<f32>(0.0);
      if (key < s1) {
        v = qkv[key * row4 + v_off + i % D4];
      }
      kv_sh[i] = v; // K's reads all happened before the last barrier
    }
    workgroupBarrier();
    for (var k = 0u; k < n_dpt4(); k++) {
      acc[k] *= alpha;
    }
    for (var j = 0u; j < n_bk(); j++) {
      let p = p_sh[r * BK + j];
      for (var k = 0u; k < n_dpt4(); k++) {
        acc[k] += p * kv_sh[j * D4 + c * DPT4 + k];
      }
    }
    m = m_new;
  }
  // The row's denominator: the TPR threads' shares, summed through workgroup memory.
  workgroupBarrier();
  s_sh[r * BK + c] = l;
  workgroupBarrier();
  var l_row = 0.0;
  for (var cc = 0u; cc < TPR; cc++) {
    l_row += s_sh[r * BK + cc];
  }
  if (s0 + tile * BQ + r < s1) {
    let ob = qrow * params.heads * D4 + head * D4 + c * DPT4;
    for (var k = 0u; k < n_dpt4(); k++) {
      out[ob + k] = acc[k] / l_row;
    }
  }
}

// moe_router: the MoE gate of one token per workgroup, from router logits to its top-k experts and their weights
// (HF Qwen3-VL-MoE TopKRouter): logits = x · Wgᵀ, p = softmax(logits) in f32, top-k of p, weights = p_sel / Σ p_sel
// (NORM: norm_topk_prob) or p_sel. Nothing is read back: the ids feed the grouped matvec / MoeAlign directly.
//   FROM_X       x: vec4<act_t> [T, x_stride] · w: router weight [E, H] (W_BF16: 8 bf16 per vec4<u32>; W_F32: vec4<f32>)
//   FROM_LOGITS  logits: f32 [T, E] (e.g. from a dense matvec)
//   topk_ids: u32 [T, k] · topk_weights: f32 [T, k], rank order (largest first)
// Ties: equal probabilities rank by expert id, lowest first (torch.topk leaves the order of ties unspecified).
// Bindings: 0 params · 1 x or logits · 2 w (FROM_X) · 3 topk_ids · 4 topk_weights.
// Work split (FROM_X): ROW_THREADS threads per expert row stride over its H/8 units, WG_SIZE / ROW_THREADS rows at
// a time, tree-reduced in workgroup memory. Softmax: max and sum tree-reduced. Top-k: every expert counts the
// experts that outrank it (one pass, no sort); the k with rank < k write their slot. WG_SIZE is a power of two.

struct Params {
  T: u32, // tokens (workgroups)
  E: u32, // experts, ≤ MAX_E
  H: u32, // hidden size (FROM_X), a multiple of 16
  k: u32, // experts per token, ≤ min(E, MAX_K)
  x_stride: u32, // elements between rows of x, a multiple of 4
  grid_x: u32, // workgroups in x; token = wid.y · grid_x + wid.x
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
//#if FROM_X
@group(0) @binding(1) var<storage, read> x: array<vec4<act_t>>;
//#if W_BF16
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
//#else
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
//#endif
//#else
@group(0) @binding(1) var<storage, read> logits: array<f32>;
//#endif
@group(0) @binding(3) var<storage, read_write> topk_ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> topk_weights: array<f32>;

override WG_SIZE: u32 = 128u;
override ROW_THREADS: u32 = 32u; // power of two ≤ WG_SIZE
override MAX_E: u32 = 512u;
override MAX_K: u32 = 32u;

var<workgroup> prob: array<f32, MAX_E>; // logits, then probabilities
var<workgroup> red: array<f32, WG_SIZE>;
var<workgroup> sel_p: array<f32, MAX_K>;
var<workgroup> sel_e: array<u32, MAX_K>;

//#if FROM_X
// Σ of 8 products: unit u (k = 8u .. 8u+7) of expert row e times the same unit of x row t.
fn dot8(e: u32, t: u32, u: u32) -> f32 {
  let xb = (t * params.x_stride) / 4u + 2u * u;
  let x0 = vec4<f32>(x[xb]);
  let x1 = vec4<f32>(x[xb + 1u]);
//#if W_BF16
  let q = w[(e * params.H) / 8u + u];
  let w0 = vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xFFFF0000u), bitcast<f32>(q.y << 16u),
                     bitcast<f32>(q.y & 0xFFFF0000u));
  let w1 = vec4<f32>(bitcast<f32>(q.z << 16u), bitcast<f32>(q.z & 0xFFFF0000u), bitcast<f32>(q.w << 16u),
                     bitcast<f32>(q.w & 0xFFFF0000u));
//#else
  let wb = (e * params.H) / 4u + 2u * u;
  let w0 = w[wb];
  let w1 = w[wb + 1u];
//#endif
  return dot(x0, w0) + dot(x1, w1);
}
//#endif

// Tree reduction of red[0 .. WG_SIZE) (max or sum); every invocation gets the result.
fn reduce_all(v: f32, lid: u32, is_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG_SIZE / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] = select(red[lid] + red[lid + s], max(red[lid], red[lid + s]), is_max);
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // red is reused by the next reduction
  return r;
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * params.grid_x + wid.x;
  if (t >= params.T) {
    return; // whole workgroups only: the barriers below stay uniform
  }
  let E = params.E;

  // 1. Logits into prob[].
//#if FROM_X
  let groups = WG_SIZE / ROW_THREADS;
  let g = lid / ROW_THREADS;
  let tk = lid % ROW_THREADS;
  let units = params.H / 8u;
  for (var base = 0u; base < E; base += groups) {
    let e = base + g;
    var acc = 0.0;
    if (e < E) {
      for (var u = tk; u < units; u += ROW_THREADS) {
        acc += dot8(e, t, u);
      }
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = ROW_THREADS / 2u; s > 0u; s >>= 1u) {
      if (tk < s) {
        red[lid] += red[lid + s];
      }
      workgroupBarrier();
    }
    if (tk == 0u && e < E) {
      prob[e] = red[lid];
    }
    workgroupBarrier();
  }
//#else
  for (var e = lid; e < E; e += WG_SIZE) {
    prob[e] = logits[t * E + e];
  }
  workgroupBarrier();
//#endif

  // 2. Softmax in f32: exp(l - max) / Σ exp(l - max).
  var m = bitcast<f32>(0xff7fffffu); // -f32 max
  for (var e = lid; e < E; e += WG_SIZE) {
    m = max(m, prob[e]);
  }
  m = reduce_all(m, lid, true);
  var s = 0.0;
  for (var e = lid; e < E; e += WG_SIZE) {
    s += exp(prob[e] - m);
  }
  s = reduce_all(s, lid, false);
  for (var e = lid; e < E; e += WG_SIZE) {
    prob[e] = exp(prob[e] - m) / s;
  }
  workgroupBarrier();

  // 3. Top-k by rank: experts with a larger probability, or an equal one and a lower id, outrank e.
  let k = params.k;
  for (var e = lid; e < E; e += WG_SIZE) {
    let p = prob[e];
    var rank = 0u;
    for (var o = 0u; o < E && rank < k; o++) {
      let q = prob[o];
      rank += select(0u, 1u, q > p || (q == p && o < e));
    }
    if (rank < k) {
      sel_p[rank] = p;
      sel_e[rank] = e;
    }
  }
  workgroupBarrier();

  // 4. Weights, renormalized over the k selected (summed in rank order, as torch sums the sorted top-k values).
  if (lid < k) {
    var wt = sel_p[lid];
//#if NORM
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
      total += sel_p[j];
    }
    wt = wt / total;
//#endif
    topk_ids[t * k + lid] = sel_e[lid];
    topk_weights[t * k + lid] = wt;
  }
}

// rms_norm: out[r, c] = x[r, c] / sqrt(mean_c(x[r, :]²) + eps) * w[c]   (HF Qwen3: weight * x, not (1 + weight))
// x: (rows, cols) src_t · w: (cols) f32 · out: (rows, cols) dst_t · math and accumulation in f32.
// One workgroup per row (also per head for q_norm/k_norm: rows = tokens·heads, cols = head_dim).
// Variants (flags): F16 (src or dst is f16), SUBGROUPS (subgroupAdd reduction; else a workgroup-memory tree).
// Types come from `alias src_t` / `alias dst_t` lines the wrapper prepends.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  rows_per_grid_x: u32, // workgroups in x; row = wid.y * rows_per_grid_x + wid.x
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<src_t>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<dst_t>;

override WG_SIZE: u32 = 256; // a power of two
var<workgroup> partial: array<f32, WG_SIZE>;

@compute @workgroup_size(WG_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
//#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
//#endif
) {
  let row = wid.y * params.rows_per_grid_x + wid.x;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.cols;
  var ss = 0.0;
  for (var c = lid; c < params.cols; c += WG_SIZE) {
    let v = f32(x[base + c]);
    ss += v * v;
  }
//#if SUBGROUPS
  // Subgroup sums land in partial[subgroup index]; 1-D workgroups lay subgroups out by local index.
  let sg_sum = subgroupAdd(ss);
  if (sg_lane == 0u) {
    partial[lid / sg_size] = sg_sum;
  }
  workgroupBarrier();
  var total = 0.0;
  let num_subgroups = (WG_SIZE + sg_size - 1u) / sg_size;
  for (var i = 0u; i < num_subgroups; i++) {
    total += partial[i];
  }
//#else
  partial[lid] = ss;
  workgroupBarrier();
  for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
//#endif
  let scale = inverseSqrt(total / f32(params.cols) + params.eps);
  for (var c = lid; c < params.cols; c += WG_SIZE) {
    out[base + c] = dst_t(f32(x[base + c]) * scale * w[c]);
  }
}

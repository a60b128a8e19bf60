// layer_norm: out[r, c] = (x[r, c] − mean_r) / sqrt(var_r + eps) · w[c] + b[c]   (torch nn.LayerNorm, biased var)
// x, out: (rows, cols) f32 · w, b: (cols) f32 · math in f32.
// One workgroup per row. Two passes over the row (mean, then the centered sum of squares) rather than
// E[x²] − E[x]²: it costs one more read of a row that is in cache and avoids the cancellation of the one-pass form.
// Variants (flags): SUBGROUPS (subgroupAdd reduction; else a workgroup-memory tree).

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  rows_per_grid_x: u32, // workgroups in x; row = wid.y * rows_per_grid_x + wid.x
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WG_SIZE: u32 = 256; // a power of two
var<workgroup> partial: array<f32, WG_SIZE>;

// Sum of `v` over the workgroup, returned to every invocation. Called from uniform control flow only.
fn workgroup_sum(v: f32, lid: u32, sg_lane: u32, sg_size: u32) -> f32 {
  workgroupBarrier(); // the previous call's reads of `partial` are done
//#if SUBGROUPS
  // Subgroup sums land in partial[subgroup index]; 1-D workgroups lay subgroups out by local index.
  let sg_sum = subgroupAdd(v);
  if (sg_lane == 0u) {
    partial[lid / sg_size] = sg_sum;
  }
  workgroupBarrier();
  var total = 0.0;
  let num_subgroups = (WG_SIZE + sg_size - 1u) / sg_size;
  for (var i = 0u; i < num_subgroups; i++) {
    total += partial[i];
  }
  return total;
//#else
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  return partial[0];
//#endif
}

@compute @workgroup_size(WG_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
//#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
//#endif
) {
//#if !SUBGROUPS
  let sg_lane = 0u;
  let sg_size = 1u;
//#endif
  let row = wid.y * params.rows_per_grid_x + wid.x;
  if (row >= params.rows) {
    return; // the whole workgroup leaves together: barriers below stay uniform
  }
  let base = row * params.cols;
  let n = f32(params.cols);
  var s = 0.0;
  for (var c = lid; c < params.cols; c += WG_SIZE) {
    s += x[base + c];
  }
  let mean = workgroup_sum(s, lid, sg_lane, sg_size) / n;
  var ss = 0.0;
  for (var c = lid; c < params.cols; c += WG_SIZE) {
    let d = x[base + c] - mean;
    ss += d * d;
  }
  let rstd = inverseSqrt(workgroup_sum(ss, lid, sg_lane, sg_size) / n + params.eps);
  for (var c = lid; c < params.cols; c += WG_SIZE) {
    out[base + c] = (x[base + c] - mean) * rstd * w[c] + b[c];
  }
}

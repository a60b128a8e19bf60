// stream_read: reads a buffer once with vec4<u32> loads and writes one wrapping u32 sum per workgroup. Its time is
// the device's streaming-read peak, the denominator every bandwidth-bound kernel benchmark is measured against.
// Bindings: 0 params (uniform) · 1 src: (num_vec4) vec4<u32> · 2 out: (workgroups) u32
// Workgroup w reads the contiguous chunk [w·WG_SIZE·ITEMS, (w+1)·WG_SIZE·ITEMS) of src; within it, load i of
// thread t is element t + i·WG_SIZE, so each load instruction is coalesced across the workgroup.
// No variants (no flags); knobs are override constants.

struct Params {
  num_vec4: u32,
  grid_x: u32, // workgroups in x; workgroup index = wid.y * grid_x + wid.x
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override WG_SIZE: u32 = 256; // a power of two
override ITEMS: u32 = 8; // independent 16-byte loads in flight per thread
var<workgroup> partial: array<u32, WG_SIZE>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * params.grid_x + wid.x;
  let base = wg * WG_SIZE * ITEMS + lid;
  var s = vec4<u32>(0u);
  for (var i = 0u; i < ITEMS; i++) {
    let idx = base + i * WG_SIZE;
    if (idx < params.num_vec4) {
      s += src[idx];
    }
  }
  partial[lid] = s.x + s.y + s.z + s.w;
  workgroupBarrier();
  for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[wg] = partial[0];
  }
}

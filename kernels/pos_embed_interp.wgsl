// pos_embed_interp: adds the bilinearly interpolated learned position embedding to each patch row, in place:
//   x[t, c] += Σ_{j<4} weight[t, j] · table[index[t, j], c]
// x: (rows, cols) f32 · table: (table_rows, cols) f32 · index: u32 (rows, 4) · weight: f32 (rows, 4).
// The host computes index/weight (transformers' fast_pos_embed_interpolate: corner-aligned bilinear on the
// sqrt(num_position_embeddings) grid, reordered into merge-block order); the four terms are summed in j order and
// then added to x, as torch does. One invocation per element; i = (wid.y · grid_x + wid.x) · WG_SIZE + lid.

struct Params {
  n: u32, // rows · cols
  cols: u32,
  table_rows: u32,
  grid_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> index: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> weight: array<vec4<f32>>;

override WG_SIZE: u32 = 256;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * params.grid_x + wid.x) * WG_SIZE + lid;
  if (i >= params.n) {
    return;
  }
  let t = i / params.cols;
  let c = i - t * params.cols;
  // An index past the table is a caller bug; clamping keeps the read inside the buffer.
  let idx = min(index[t], vec4<u32>(params.table_rows - 1u)) * params.cols + c;
  let w = weight[t];
  var p = w.x * table[idx.x];
  p += w.y * table[idx.y];
  p += w.z * table[idx.z];
  p += w.w * table[idx.w];
  x[i] += p;
}

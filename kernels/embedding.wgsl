// embedding: out[t, h] = f32(table[ids[t], h]) for the token rows held by one part of a BF16 table.
// ids: (T) u32 · table part: rows [row_start, row_start + row_count) of the (V, H) bf16 table, packed two per u32
// (element e of the part at word e / 2, low half first) · out: (T, H) dst_t.
// The vocabulary table (151936 × 2048 bf16 = 622 MB) can exceed one storage binding, so the wrapper binds it in
// parts and records one dispatch per part; each dispatch writes only the rows whose id falls in its part. Ids ≥ vocab
// (invalid) get zeros, written by the dispatch of the last part. One invocation per output element:
// i = (wid.y · grid_x + wid.x) · WG_SIZE + lid. dst_t comes from an `alias dst_t` line the wrapper prepends.

struct Params {
  tokens: u32,
  hidden: u32,
  row_start: u32,
  row_count: u32,
  vocab: u32,
  grid_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<dst_t>;

override WG_SIZE: u32 = 256;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * params.grid_x + wid.x) * WG_SIZE + lid;
  if (i >= params.tokens * params.hidden) {
    return;
  }
  let t = i / params.hidden;
  let h = i - t * params.hidden;
  let id = ids[t];
  let row = id - params.row_start; // wraps to a huge value below row_start
  if (row < params.row_count) {
    let e = row * params.hidden + h;
    let bits = (table[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
    out[i] = dst_t(bitcast<f32>(bits << 16u));
  } else if (id >= params.vocab && params.row_start + params.row_count == params.vocab) {
    out[i] = dst_t(0.0);
  }
}

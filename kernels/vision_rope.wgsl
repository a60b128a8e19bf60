// vision_rope: the Qwen3-VL vision tower's 2-D rotary embedding, in place on q and k of the fused qkv rows.
// qkv:  f32 [T, 3, H, D] (the qkv linear's output: q heads, k heads, v heads); v is left alone.
// pos:  u32 [T, 2] (row, col) of each patch on the (unmerged) patch grid.
// table: vec2<f32> [max_position, D/4]: (cos, sin) of p · inv_freq[j], made on the host in f32 as transformers
//   does (so no GPU cos/sin of large angles).
// For i < D/2 (rotate_half):  out[i] = x[i]·cos − x[i + D/2]·sin,  out[i + D/2] = x[i + D/2]·cos + x[i]·sin,
//   with the angle of i taken from the row for i < D/4 and from the col for D/4 ≤ i < D/2 (frequency i mod D/4):
//   transformers' rot_pos_emb gives [row·inv_freq, col·inv_freq] (D/2 values) and cat(emb, emb) fills D.
// One invocation per (token, q-or-k head, i < D/2); i = (wid.y · grid_x + wid.x) · WG_SIZE + lid.

struct Params {
  n: u32, // T · 2H · D/2
  heads: u32, // H
  head_dim: u32, // D
  grid_x: u32,
  max_position: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;

override WG_SIZE: u32 = 256;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * params.grid_x + wid.x) * WG_SIZE + lid;
  if (e >= params.n) {
    return;
  }
  let half = params.head_dim / 2u;
  let quarter = params.head_dim / 4u;
  let i = e % half;
  let th = e / half; // token · 2H + head, q heads then k heads: contiguous in the row
  let t = th / (2u * params.heads);
  let base = t * 3u * params.heads * params.head_dim + (th % (2u * params.heads)) * params.head_dim;
  let axis = select(1u, 0u, i < quarter); // row for the first quarter, col for the second
  // Out-of-range positions are a caller bug; clamping keeps the read inside the table.
  let p = min(pos[2u * t + axis], params.max_position - 1u);
  let cs = table[p * quarter + i % quarter];
  let x1 = qkv[base + i];
  let x2 = qkv[base + half + i];
  qkv[base + i] = x1 * cs.x - x2 * cs.y;
  qkv[base + half + i] = x2 * cs.x + x1 * cs.y;
}

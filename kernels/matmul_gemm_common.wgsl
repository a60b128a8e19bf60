// matmul_gemm_common: Params, bindings and the helpers both GEMM variants share (a //#include snippet of
// matmul_gemm_tiled.wgsl and matmul_gemm_subgroup_matrix.wgsl; it includes the shared dequant snippet).
// Weight layouts: kernels/weight_format.ts. Routing layout (GROUPED): kernels/moe_align_layout.ts.
//
// Bindings (only those a variant uses exist in its layout):
//   0 params uniform   1 x: x_t [rows, K]   2 w_data   3 w_block_scales (nvfp4) / w_scales (fp8)
//   4 w_global_scales (nvfp4)   5 pre_scale f32 [E, K] (PRE_SCALE)   6 y: y_t [rows, N]
//   7 routing u32 (GROUPED)     8 route_weights f32 [pairs] (ROUTE_WEIGHT)
// Flags: exactly one of W_F32 W_BF16 W_NVFP4 W_FP8; PRE_SCALE; GROUPED; ROUTE_WEIGHT.
//
// A weight element is split in two factors so the tensor-core path keeps its f16 operand exact where it can:
//   weight_8()         the factors that vary along k (E2M1·E4M3 block scale for nvfp4: exact in f16; fp8 block
//                      scales when the scale grid has more than one k-block)
//   weight_col_scale() the factor constant along k (nvfp4 global scale of the row group; fp8 per-tensor / per-channel
//                      scale), applied once to the f32 accumulator in the epilogue

//#include dequant

struct Params {
  M: u32, // dense: rows of x and y (grouped: unused, rows come from the routing)
  N: u32,
  K: u32, // multiple of 16
  x_row_div: u32, // grouped: pair p reads x row p / x_row_div (top_k: x holds tokens; 1: x holds pairs)
  rows_per_group: u32, // nvfp4: N / numRowGroups
  num_groups: u32, // nvfp4: numRowGroups
  scale_bn: u32, // fp8: scale block rows
  scale_bk: u32, // fp8: scale block columns (a multiple of 8 when scale_gk > 1)
  scale_gn: u32, // fp8: ceil(N / bn)
  scale_gk: u32, // fp8: ceil(K / bk); 1 = constant along k, applied in the epilogue
  tile_expert_base: u32, // grouped: index in `routing` of tile 0's expert (= maxPaddedRows)
  max_tiles: u32, // grouped: tile experts in `routing`; workgroups past it exit
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
//#if W_F32
@group(0) @binding(2) var<storage, read> w_data: array<vec4<f32>>;
//#endif
//#if W_BF16
@group(0) @binding(2) var<storage, read> w_data: array<vec4<u32>>; // 8 bf16 per element
//#endif
//#if W_NVFP4
@group(0) @binding(2) var<storage, read> w_data: array<u32>; // 8 E2M1 codes per word
@group(0) @binding(3) var<storage, read> w_block_scales: array<u32>; // E4M3 bytes [E, N, K/16]
@group(0) @binding(4) var<storage, read> w_global_scales: array<f32>; // [E, numRowGroups]
//#endif
//#if W_FP8
@group(0) @binding(2) var<storage, read> w_data: array<vec2<u32>>; // 8 E4M3 bytes per element
@group(0) @binding(3) var<storage, read> w_scales: array<f32>; // [E, gn, gk]
//#endif
//#if PRE_SCALE
@group(0) @binding(5) var<storage, read> pre_scale: array<f32>;
//#endif
@group(0) @binding(6) var<storage, read_write> y: array<y_t>;
//#if GROUPED
@group(0) @binding(7) var<storage, read> routing: array<u32>;
//#endif
//#if ROUTE_WEIGHT
@group(0) @binding(8) var<storage, read> route_weights: array<f32>;
//#endif

const NO_EXPERT: u32 = 0xffffffffu;
const NO_ROW: u32 = 0xffffffffu; // = NO_PAIR in the routing

// W[e, n, k .. k+7] without weight_col_scale (k a multiple of 8; K a multiple of 16 keeps a word inside one row).
fn weight_8(e: u32, n: u32, k: u32) -> array<f32, 8> {
  let idx = (e * params.N + n) * params.K + k;
//#if W_F32
  let a = w_data[idx / 4u];
  let b = w_data[idx / 4u + 1u];
  return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
//#endif
//#if W_BF16
  let q = w_data[idx / 8u];
  return array<f32, 8>(
    bf16_to_f32(q.x), bf16_to_f32(q.x >> 16u), bf16_to_f32(q.y), bf16_to_f32(q.y >> 16u),
    bf16_to_f32(q.z), bf16_to_f32(q.z >> 16u), bf16_to_f32(q.w), bf16_to_f32(q.w >> 16u));
//#endif
//#if W_NVFP4
  let q = w_data[idx / 8u];
  let si = idx / 16u;
  let s = e4m3_to_f32((w_block_scales[si / 4u] >> (8u * (si % 4u))) & 0xffu);
  var v: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    v[i] = e2m1_to_f32((q >> (4u * i)) & 0xfu) * s;
  }
  return v;
//#endif
//#if W_FP8
  let q = w_data[idx / 8u];
  var s = 1.0;
  if (params.scale_gk > 1u) {
    s = w_scales[(e * params.scale_gn + n / params.scale_bn) * params.scale_gk + k / params.scale_bk];
  }
  var v: array<f32, 8>;
  for (var i = 0u; i < 4u; i++) {
    v[i] = e4m3_to_f32((q.x >> (8u * i)) & 0xffu) * s;
    v[i + 4u] = e4m3_to_f32((q.y >> (8u * i)) & 0xffu) * s;
  }
  return v;
//#endif
}

// The factor of W[e, n, :] that is constant along k.
fn weight_col_scale(e: u32, n: u32) -> f32 {
//#if W_NVFP4
  return w_global_scales[e * params.num_groups + n / params.rows_per_group];
//#endif
//#if W_FP8
  if (params.scale_gk == 1u) {
    return w_scales[e * params.scale_gn + n / params.scale_bn];
  }
  return 1.0;
//#endif
//#if W_F32
  return 1.0;
//#endif
//#if W_BF16
  return 1.0;
//#endif
}

// x[row, k] times the expert's pre-quantization scale, in f32.
fn load_x(row: u32, k: u32, e: u32) -> f32 {
  var v = f32(x[row * params.K + k]);
//#if PRE_SCALE
  v *= pre_scale[e * params.K + k];
//#endif
  return v;
}

// Expert of row tile `tile` (0 for a dense GEMM); NO_EXPERT past the last tile.
fn tile_expert(tile: u32) -> u32 {
//#if GROUPED
  if (tile >= params.max_tiles) {
    return NO_EXPERT;
  }
  return routing[params.tile_expert_base + tile];
//#else
  return 0u;
//#endif
}

// Output row of slot r of row tile `tile` (tiles of tile_m rows), or NO_ROW (padding, or past M).
fn tile_row(tile: u32, tile_m: u32, r: u32) -> u32 {
//#if GROUPED
  return routing[tile * tile_m + r];
//#else
  let m = tile * tile_m + r;
  return select(NO_ROW, m, m < params.M);
//#endif
}

// Row of x that output row `row` reads.
fn x_row(row: u32) -> u32 {
//#if GROUPED
  return row / params.x_row_div;
//#else
  return row;
//#endif
}

// Epilogue of one output: the k-constant weight factor, the routing weight, the output type.
fn store_y(row: u32, n: u32, acc: f32, e: u32) {
  var v = acc * weight_col_scale(e, n);
//#if ROUTE_WEIGHT
  v *= route_weights[row];
//#endif
  y[row * params.N + n] = y_t(v);
}

// matmul_gemm_tiled: y = x · Wᵀ for prefill (many rows), the portable path: f32 FMA on tiles staged in workgroup
// memory. Runs on every adapter (lavapipe in CI); the tensor-core variant is matmul_gemm_subgroup_matrix.wgsl.
//
//   dense:   x: x_t [M, K] · W [N, K] (any kernels/weight_format.ts format) · y: y_t [M, N]
//            grid (ceil(M / TILE_M), ceil(N / TILE_N))
//   GROUPED: x: x_t [rows, K] · W [E, N, K] · y: y_t [pairs, N]; row tile t holds the pairs routing[t·TILE_M ..]
//            of expert routing[tile_expert_base + t] (kernels/moe_align_layout.ts); pair p reads x row
//            p / x_row_div and writes y row p. grid (numTiles, ceil(N / TILE_N)), usually dispatched indirect.
// Bindings, Params and flags: matmul_gemm_common.wgsl. Accumulation in f32 over the whole K.
//
// Each workgroup computes a TILE_M × TILE_N block; each invocation a 4 × 4 sub-block (rows ty·4.., columns tx·4..)
// from vec4 reads of the two staged tiles. Per K step the workgroup stages x (TILE_M × TILE_K, pre-scaled) and the
// weight tile dequantized to f32 (TILE_N × TILE_K, 8 k per decoded word), both k-major.

//#include gemm_common

override TILE_M: u32 = 64u; // multiple of 4
override TILE_N: u32 = 64u; // multiple of 4
override TILE_K: u32 = 16u; // multiple of 8
override WG_SIZE: u32 = (TILE_M / 4u) * (TILE_N / 4u);

var<workgroup> xs: array<vec4<f32>, TILE_K * TILE_M / 4u>; // [k][m / 4]
var<workgroup> ws: array<vec4<f32>, TILE_K * TILE_N / 4u>; // [k][n / 4]
var<workgroup> slot_row: array<u32, TILE_M>; // output row of each tile row, NO_ROW for none

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = wid.x;
  let n0 = wid.y * TILE_N;
  let e = tile_expert(tile);
  if (e == NO_EXPERT) {
    return;
  }
  for (var r = lid; r < TILE_M; r += WG_SIZE) {
    slot_row[r] = tile_row(tile, TILE_M, r);
  }
  workgroupBarrier();

  let tx = lid % (TILE_N / 4u);
  let ty = lid / (TILE_N / 4u);
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < params.K; k0 += TILE_K) {
    for (var i = lid; i < TILE_M * TILE_K; i += WG_SIZE) {
      let r = i / TILE_K;
      let c = i % TILE_K;
      let row = slot_row[r];
      var v = 0.0;
      if (row != NO_ROW && k0 + c < params.K) {
        v = load_x(x_row(row), k0 + c, e);
      }
      xs[c * (TILE_M / 4u) + r / 4u][r % 4u] = v;
    }
    for (var i = lid; i < TILE_N * (TILE_K / 8u); i += WG_SIZE) {
      let nl = i / (TILE_K / 8u);
      let kl = (i % (TILE_K / 8u)) * 8u;
      var v: array<f32, 8>;
      if (n0 + nl < params.N && k0 + kl < params.K) {
        v = weight_8(e, n0 + nl, k0 + kl);
      }
      for (var j = 0u; j < 8u; j++) {
        ws[(kl + j) * (TILE_N / 4u) + nl / 4u][nl % 4u] = v[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let a = xs[kk * (TILE_M / 4u) + ty];
      let b = ws[kk * (TILE_N / 4u) + tx];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = slot_row[ty * 4u + i];
    if (row == NO_ROW) {
      continue;
    }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx * 4u + j;
      if (n < params.N) {
        store_y(row, n, acc[i][j], e);
      }
    }
  }
}

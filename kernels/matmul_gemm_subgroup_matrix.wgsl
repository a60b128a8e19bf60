// matmul_gemm_subgroup_matrix: y = x · Wᵀ for prefill on tensor cores (chromium_experimental_subgroup_matrix):
// x and the dequantized weight tile are staged in workgroup memory as f16, multiplied as 16×16×16 f16 matrices
// with f32 accumulation. Same shapes, bindings, flags and grids as matmul_gemm_tiled.wgsl (see there and
// matmul_gemm_common.wgsl); needs shader-f16, subgroups and an f16→f32 16×16×16 subgroup-matrix config.
//
// Workgroup: NUM_SUBGROUPS = SG_ROWS × SG_COLS subgroups of SUBGROUP_SIZE (the adapter's maximum subgroup size: Dawn
// requires workgroup_size.x to be a multiple of it). Subgroup (sg_m, sg_n) owns a 32 × 64 block of the
// TILE_M × TILE_N output tile as 2 × 4 accumulators. Per K step all invocations stage x (TILE_M × TILE_K) and the
// weight tile (TILE_N × TILE_K, dequantized 8 k per word) into rows padded to KS halves (16-byte aligned strides,
// as cooperative-matrix loads want); then each subgroup loads 2 left (row-major [m][k]) and 4 right (column-major
// [n][k] = Wᵀ) operands per 16 k and issues 8 multiply-accumulates. The epilogue goes through `stage` (one 16 × 16
// f32 block per subgroup) so each element gets its column scale, routing weight, row mapping and bounds check.
//
// Precision: the f16 operands are x·preScale rounded to f16 (relative 2⁻¹¹) and the weight without its k-constant
// factor, which is exact in f16 for nvfp4 (E2M1·E4M3) and fp8 per-tensor/per-channel (E4M3), rounded for bf16
// (range), f32 and fp8 with k-blocked scales. Products are exact in f32; accumulation in f32.
//
// SGM_EMULATED replaces the four subgroup-matrix operations by per-invocation loops over 16 × 16 arrays with the
// same semantics (every invocation computes the whole matrix), so CI can check this kernel's tiling and indexing
// on adapters without tensor cores; it is a test device, never a fast path.

//#include gemm_common

const SG_TM: u32 = 2u; // 16-row blocks per subgroup
const SG_TN: u32 = 4u; // 16-column blocks per subgroup
override SG_ROWS: u32 = 2u; // subgroups along M: TILE_M = 32·SG_ROWS
override SG_COLS: u32 = 2u; // subgroups along N: TILE_N = 64·SG_COLS
override SUBGROUP_SIZE: u32 = 32u;
override TILE_K: u32 = 32u; // multiple of 16
override TILE_M: u32 = SG_ROWS * SG_TM * 16u;
override TILE_N: u32 = SG_COLS * SG_TN * 16u;
override NUM_SUBGROUPS: u32 = SG_ROWS * SG_COLS;
override WG_SIZE: u32 = NUM_SUBGROUPS * SUBGROUP_SIZE;
override KS: u32 = TILE_K + 8u; // staged row stride in halves: a multiple of 8 (16 bytes), off the bank period

var<workgroup> xs: array<f16, TILE_M * KS>; // [m][k]
var<workgroup> ws: array<f16, TILE_N * KS>; // [n][k]
var<workgroup> stage: array<f32, NUM_SUBGROUPS * 256u>; // one 16 × 16 row-major block per subgroup
var<workgroup> slot_row: array<u32, TILE_M>; // output row of each tile row, NO_ROW for none

//#if !SGM_EMULATED
alias sgm_left = subgroup_matrix_left<f16, 16, 16>;
alias sgm_right = subgroup_matrix_right<f16, 16, 16>;
alias sgm_result = subgroup_matrix_result<f32, 16, 16>;

// 16 × 16 block of xs at `offset`: rows m, columns k.
fn load_left(offset: u32) -> sgm_left {
  return subgroupMatrixLoad<sgm_left, row_major>(&xs, offset, KS);
}

// 16 × 16 block of Wᵀ (rows k, columns n) from ws laid out [n][k]: column-major.
fn load_right(offset: u32) -> sgm_right {
  return subgroupMatrixLoad<sgm_right, col_major>(&ws, offset, KS);
}

fn mma(a: sgm_left, b: sgm_right, c: sgm_result) -> sgm_result {
  return subgroupMatrixMultiplyAccumulate(a, b, c);
}

fn store_result(offset: u32, c: sgm_result) {
  subgroupMatrixStore<row_major>(&stage, offset, c, 16u);
}
//#else
alias sgm_left = array<f16, 256>; // [m][k]
alias sgm_right = array<f16, 256>; // [k][n]
alias sgm_result = array<f32, 256>; // [m][n]

fn load_left(offset: u32) -> sgm_left {
  var a: sgm_left;
  for (var i = 0u; i < 256u; i++) {
    a[i] = xs[offset + (i / 16u) * KS + i % 16u];
  }
  return a;
}

fn load_right(offset: u32) -> sgm_right {
  var b: sgm_right;
  for (var i = 0u; i < 256u; i++) {
    b[i] = ws[offset + (i % 16u) * KS + i / 16u]; // element (k = i / 16, n = i % 16) at n·KS + k
  }
  return b;
}

fn mma(a: sgm_left, b: sgm_right, c: sgm_result) -> sgm_result {
  var r = c;
  for (var m = 0u; m < 16u; m++) {
    for (var n = 0u; n < 16u; n++) {
      var s = 0.0;
      for (var k = 0u; k < 16u; k++) {
        s += f32(a[m * 16u + k]) * f32(b[k * 16u + n]);
      }
      r[m * 16u + n] += s;
    }
  }
  return r;
}

fn store_result(offset: u32, c: sgm_result) {
  for (var i = 0u; i < 256u; i++) {
    stage[offset + i] = c[i]; // every invocation of the subgroup writes the same values
  }
}
//#endif

@compute @workgroup_size(WG_SIZE)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
//#if !SGM_EMULATED
  @builtin(subgroup_id) sg: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) sg_size: u32,
//#endif
) {
//#if SGM_EMULATED
  let sg = lid / SUBGROUP_SIZE;
  let lane = lid % SUBGROUP_SIZE;
  let sg_size = SUBGROUP_SIZE;
//#endif
  let tile = wid.x;
  let n0 = wid.y * TILE_N;
  let e = tile_expert(tile);
  if (e == NO_EXPERT) {
    return;
  }
  for (var r = lid; r < TILE_M; r += WG_SIZE) {
    slot_row[r] = tile_row(tile, TILE_M, r);
  }
  // Subgroups narrower than SUBGROUP_SIZE leave more subgroups than blocks: the extra ones only stage tiles.
  let sg_active = sg < NUM_SUBGROUPS;
  let sg_m = (sg % NUM_SUBGROUPS) / SG_COLS;
  let sg_n = sg % SG_COLS;
  let a_base = sg_m * (SG_TM * 16u) * KS;
  let b_base = sg_n * (SG_TN * 16u) * KS;
  var acc: array<sgm_result, 8>; // [i·SG_TN + j]: rows 16i, columns 16j of the subgroup's block; zero-initialized

  for (var k0 = 0u; k0 < params.K; k0 += TILE_K) {
    workgroupBarrier(); // slot_row is written (first step); the previous step's operands are consumed
    for (var i = lid; i < TILE_M * TILE_K; i += WG_SIZE) {
      let r = i / TILE_K;
      let c = i % TILE_K;
      let row = slot_row[r];
      var v = 0.0;
      if (row != NO_ROW && k0 + c < params.K) {
        v = load_x(x_row(row), k0 + c, e);
      }
      xs[r * KS + c] = f16(v);
    }
    for (var i = lid; i < TILE_N * (TILE_K / 8u); i += WG_SIZE) {
      let nl = i / (TILE_K / 8u);
      let kl = (i % (TILE_K / 8u)) * 8u;
      var v: array<f32, 8>;
      if (n0 + nl < params.N && k0 + kl < params.K) {
        v = weight_8(e, n0 + nl, k0 + kl);
      }
      for (var j = 0u; j < 8u; j++) {
        ws[nl * KS + kl + j] = f16(v[j]);
      }
    }
    workgroupBarrier();
    if (sg_active) {
      for (var kk = 0u; kk < TILE_K; kk += 16u) {
        let l0 = load_left(a_base + kk);
        let l1 = load_left(a_base + 16u * KS + kk);
        for (var j = 0u; j < SG_TN; j++) {
          let b = load_right(b_base + j * 16u * KS + kk);
          acc[j] = mma(l0, b, acc[j]);
          acc[SG_TN + j] = mma(l1, b, acc[SG_TN + j]);
        }
      }
    }
  }

  for (var blk = 0u; blk < SG_TM * SG_TN; blk++) {
    if (sg_active) {
      store_result(sg * 256u, acc[blk]);
    }
    workgroupBarrier();
    if (sg_active) {
      let r0 = sg_m * (SG_TM * 16u) + (blk / SG_TN) * 16u;
      let c0 = n0 + sg_n * (SG_TN * 16u) + (blk % SG_TN) * 16u;
      for (var q = lane; q < 256u; q += sg_size) {
        let row = slot_row[r0 + q / 16u];
        let n = c0 + q % 16u;
        if (row != NO_ROW && n < params.N) {
          store_y(row, n, stage[sg * 256u + q], e);
        }
      }
    }
    workgroupBarrier();
  }
}

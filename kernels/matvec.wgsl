// matvec: decode-side (small-M) dequantizing matmul y[m, n] = Σ_k x[m, k] · W[e, n, k] (y = x · Wᵀ), dense or
// grouped (MoE: every tile of entries names the expert its weights come from). Memory-bound: each weight byte is
// read once per tile of M_TILE x rows, decoded once, and used M_TILE times.
//   x: (rows, x_stride) act_t · W: [E, N, K] (kernels/weight_format.ts) · out: (entries, out_stride) dst_t
// Bindings (group 0; the wrapper binds exactly those the variant uses):
//   0 params (uniform)            1 x: vec4<act_t>              2 w_data (per format, below)
//   3 w_scales (per format)       4 w_global: f32 [E, G]        5 pre_scale: vec4<f32> [E, K/4]   (PRESCALE)
//   6 tile_experts: u32 [tiles]   7 entry_rows: u32 [M]         (GROUPED)
//   8 residual: dst_t (RESIDUAL)  9 out: dst_t               10 norm_w: vec4<f32> [K/4]         (RMS_NORM)
// Formats (exactly one flag): a "unit" is 16 consecutive k of one row, the step every thread takes along K.
//   NVFP4  w_data vec2<u32> per unit (E2M1, low nibble = even k); w_scales u32 = E4M3 bytes [E, N, K/16];
//          w_global f32 [E, G], rows split into G equal groups
//   FP8    w_data vec4<u32> per unit (E4M3); w_scales f32 [E, gn, gk] over (bn, bk) blocks; FP8_ROW_SCALE when
//          bk ≥ K (per-tensor / per-channel): the row's scale is applied once, after the reduction
//   BF16   w_data 2 × vec4<u32> per unit;  F32  w_data 4 × vec4<f32> per unit
// Other flags: SUBGROUPS (subgroupAdd; else a workgroup-memory reduction), F16_DECODE (f16 bit-pattern decode of
//   E2M1/E4M3, kernels/dequant_f16.wgsl), GROUPED, PRESCALE (x · pre_scale[e] first), RESIDUAL (out = y + residual),
//   ACCUMULATE (out += y, in place), SILU_MUL (out[:, i] = silu(y[:, i]) · y[:, i + N/2]; rows come in gate/up
//   pairs, so a thread's ROWS are ROWS/2 gate rows and the matching up rows), RMS_NORM (x rows RMSNorm'ed on the
//   fly, as kernels/rms_norm.wgsl: y = rsqrt(mean_k x² + eps) · Σ_k x_k·norm_w[k]·W[n, k]; Σx² is accumulated in
//   the same loop from the x units every row group reads anyway, reduced with the outputs, applied at the end)
// Work split: a workgroup is ROW_GROUPS × TPK threads; row group g owns ROWS rows and its TPK threads stride over
// the units of those rows (coalesced: neighbouring threads read neighbouring units). Each thread keeps ROWS ×
// M_TILE f32 accumulators, reads its x unit once per row set, and the row group reduces at the end.
// Types come from `alias act_t / dst_t`; ROWS and M_TILE are consts the wrapper prepends (they size private
// arrays, which WGSL wants constant); the rest are override knobs.

struct Params {
  N: u32, // rows of one expert's W
  K: u32, // a multiple of 16
  M: u32, // entries: rows of x (dense) or (x row, expert) entries (grouped)
  num_tiles: u32, // ceil(M / M_TILE)
  x_stride: u32, // elements between rows of x, a multiple of 4
  out_stride: u32, // elements between rows of out
  row_begin: u32, // rows [row_begin, row_end) of this dispatch; w_data starts at row_begin (row-split weights)
  row_end: u32,
  expert_begin: u32, // experts [expert_begin, expert_end) of this dispatch; w_data starts at expert_begin
  expert_end: u32,
  row_blocks: u32, // workgroups per tile along N
  grid_x: u32, // workgroups in x; workgroup index = wid.y * grid_x + wid.x
  rows_per_global: u32, // NVFP4: N / G
  num_global: u32, // NVFP4: G
  scale_bn: u32, // FP8 scale block (bn, bk) and grid (gn, gk)
  scale_bk: u32,
  scale_gn: u32,
  scale_gk: u32,
  norm_eps: f32, // RMS_NORM
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<act_t>>;
//#if NVFP4
@group(0) @binding(2) var<storage, read> w_data: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> w_scales: array<u32>;
@group(0) @binding(4) var<storage, read> w_global: array<f32>;
//#endif
//#if FP8
@group(0) @binding(2) var<storage, read> w_data: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> w_scales: array<f32>;
//#endif
//#if BF16
@group(0) @binding(2) var<storage, read> w_data: array<vec4<u32>>;
//#endif
//#if F32
@group(0) @binding(2) var<storage, read> w_data: array<vec4<f32>>;
//#endif
//#if PRESCALE
@group(0) @binding(5) var<storage, read> pre_scale: array<vec4<f32>>;
//#endif
//#if GROUPED
@group(0) @binding(6) var<storage, read> tile_experts: array<u32>;
@group(0) @binding(7) var<storage, read> entry_rows: array<u32>;
//#endif
//#if RESIDUAL
@group(0) @binding(8) var<storage, read> residual: array<dst_t>;
//#endif
@group(0) @binding(9) var<storage, read_write> out: array<dst_t>;
//#if RMS_NORM
@group(0) @binding(10) var<storage, read> norm_w: array<vec4<f32>>;
//#endif

override TPK: u32 = 32; // threads along K per row group: a power of two (a multiple of the subgroup size)
override ROW_GROUPS: u32 = 4;
override PARTIALS: u32 = TPK; // reduction partials per row group: TPK, or TPK / subgroup size with SUBGROUPS
const NO_ROW: u32 = 0xFFFFFFFFu; // entry_rows padding: the entry computes nothing and writes nothing
//#if SILU_MUL
const OUT_ROWS: u32 = ROWS / 2u;
//#else
const OUT_ROWS: u32 = ROWS;
//#endif
//#if RMS_NORM
const NORM_SLOTS: u32 = M_TILE; // Σx² of each x row, reduced after the outputs' slots
//#else
const NORM_SLOTS: u32 = 0u;
//#endif
const SLOTS: u32 = ROWS * M_TILE; // output accumulators per thread
const ALL_SLOTS: u32 = SLOTS + NORM_SLOTS;
var<workgroup> partials: array<f32, PARTIALS * ROW_GROUPS * ALL_SLOTS>;

//#include dequant
//#if F16_DECODE
//#include dequant_f16
//#endif

// The 16 weights of unit `idx` (in units from the start of w_data): column j holds k = 4j..4j+3. With F16_DECODE
// NVFP4/FP8 values come scaled by 2^-14 / 2^-8; decode_factor() undoes that once per output.
fn load_unit(idx: u32) -> mat4x4<f32> {
//#if NVFP4
  let w = w_data[idx];
//#if F16_DECODE
  let a = e2m1x8_scaled(w.x);
  let b = e2m1x8_scaled(w.y);
  return mat4x4<f32>(a[0], a[1], b[0], b[1]);
//#else
  var m: mat4x4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let word = select(w.x, w.y, j >= 2u) >> (16u * (j & 1u));
    m[j] = vec4<f32>(e2m1_to_f32(word & 0xFu), e2m1_to_f32((word >> 4u) & 0xFu),
                     e2m1_to_f32((word >> 8u) & 0xFu), e2m1_to_f32((word >> 12u) & 0xFu));
  }
  return m;
//#endif
//#endif
//#if FP8
  let w = w_data[idx];
//#if F16_DECODE
  return mat4x4<f32>(e4m3x4_scaled(w.x), e4m3x4_scaled(w.y), e4m3x4_scaled(w.z), e4m3x4_scaled(w.w));
//#else
  var m: mat4x4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let word = w[j];
    m[j] = vec4<f32>(e4m3_to_f32(word & 0xFFu), e4m3_to_f32((word >> 8u) & 0xFFu),
                     e4m3_to_f32((word >> 16u) & 0xFFu), e4m3_to_f32(word >> 24u));
  }
  return m;
//#endif
//#endif
//#if BF16
  let lo = w_data[2u * idx];
  let hi = w_data[2u * idx + 1u];
  return mat4x4<f32>(bf16x4(lo.x, lo.y), bf16x4(lo.z, lo.w), bf16x4(hi.x, hi.y), bf16x4(hi.z, hi.w));
//#endif
//#if F32
  return mat4x4<f32>(w_data[4u * idx], w_data[4u * idx + 1u], w_data[4u * idx + 2u], w_data[4u * idx + 3u]);
//#endif
}

//#if BF16
// Two words of bf16 pairs (element i of a word = bits 16i..16i+15) -> 4 values in k order.
fn bf16x4(a: u32, b: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xFFFF0000u), bitcast<f32>(b << 16u),
                   bitcast<f32>(b & 0xFFFF0000u));
}
//#endif

// Scale that multiplies unit u of row n of expert e (1 where the format scales per row or not at all).
fn unit_scale(e: u32, n: u32, u: u32) -> f32 {
//#if NVFP4
  let byte_index = (e * params.N + n) * (params.K / 16u) + u;
  return e4m3_to_f32((w_scales[byte_index >> 2u] >> (8u * (byte_index & 3u))) & 0xFFu);
//#else
//#if FP8
//#if FP8_ROW_SCALE
  return 1.0;
//#else
  return w_scales[(e * params.scale_gn + n / params.scale_bn) * params.scale_gk + (16u * u) / params.scale_bk];
//#endif
//#else
  return 1.0;
//#endif
//#endif
}

// Factor applied to row n's reduced sum: global / per-row scales and the F16_DECODE constant.
fn row_factor(e: u32, n: u32) -> f32 {
  var f = 1.0;
//#if NVFP4
  f = w_global[e * params.num_global + n / params.rows_per_global];
//#if F16_DECODE
  f *= E2M1_F16_FACTOR;
//#endif
//#endif
//#if FP8
//#if FP8_ROW_SCALE
  f = w_scales[(e * params.scale_gn + n / params.scale_bn) * params.scale_gk];
//#endif
//#if F16_DECODE
  f *= E4M3_F16_FACTOR;
//#endif
//#endif
  return f;
}

// Unit u of x row r as f32.
fn load_x_raw(r: u32, u: u32) -> mat4x4<f32> {
  let base = (r * params.x_stride + 16u * u) / 4u;
  return mat4x4<f32>(vec4<f32>(x[base]), vec4<f32>(x[base + 1u]), vec4<f32>(x[base + 2u]), vec4<f32>(x[base + 3u]));
}

// A raw x unit times the norm weight (RMS_NORM; the row's 1/rms comes after the reduction) and expert e's
// pre_scale (PRESCALE).
fn scale_x(raw: mat4x4<f32>, u: u32, e: u32) -> mat4x4<f32> {
  var m = raw;
//#if RMS_NORM
  let q = 4u * u;
  m = mat4x4<f32>(m[0] * norm_w[q], m[1] * norm_w[q + 1u], m[2] * norm_w[q + 2u], m[3] * norm_w[q + 3u]);
//#endif
//#if PRESCALE
  let p = (e * params.K + 16u * u) / 4u;
  m = mat4x4<f32>(m[0] * pre_scale[p], m[1] * pre_scale[p + 1u], m[2] * pre_scale[p + 2u], m[3] * pre_scale[p + 3u]);
//#endif
  return m;
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> f32 {
  return dot(a[0], b[0]) + dot(a[1], b[1]) + dot(a[2], b[2]) + dot(a[3], b[3]);
}

// Weight row (within the expert) of thread-row r of row group `group` in row block rb; may be ≥ the valid range.
fn weight_row(rb: u32, group: u32, r: u32) -> u32 {
  let first = (rb * ROW_GROUPS + group) * OUT_ROWS;
//#if SILU_MUL
  return select(first + r, first + r - OUT_ROWS + params.N / 2u, r >= OUT_ROWS);
//#else
  return params.row_begin + first + r;
//#endif
}

// Whether output row `o` (an output column of out) exists in this dispatch.
fn out_row_valid(o: u32) -> bool {
//#if SILU_MUL
  return o < params.N / 2u;
//#else
  return o < params.row_end;
//#endif
}

@compute @workgroup_size(TPK * ROW_GROUPS)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
//#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
//#endif
) {
  let wg = wid.y * params.grid_x + wid.x;
  let tile = wg / params.row_blocks;
  let rb = wg % params.row_blocks;
  if (tile >= params.num_tiles) {
    return;
  }
  let group = lid / TPK;
  let tk = lid % TPK;

  // Expert and x rows of this tile. A tile whose expert another dispatch covers runs no iterations (no early
  // return: the reduction below must stay in uniform control flow).
  var e = 0u;
  var has_expert = true;
//#if GROUPED
  e = tile_experts[tile];
  has_expert = e >= params.expert_begin && e < params.expert_end;
//#endif
  var xrow: array<u32, M_TILE>;
  for (var i = 0u; i < M_TILE; i++) {
    let entry = min(tile * M_TILE + i, params.M - 1u);
//#if GROUPED
    xrow[i] = select(entry_rows[entry], 0u, entry_rows[entry] == NO_ROW);
//#else
    xrow[i] = entry;
//#endif
  }

  // Unit offsets of this thread's rows in w_data (rows past the end read the last valid row; never written).
  var row_unit: array<u32, ROWS>;
  var row_global: array<u32, ROWS>;
  let units = select(0u, params.K / 16u, has_expert);
  for (var r = 0u; r < ROWS; r++) {
    var n = weight_row(rb, group, r);
//#if SILU_MUL
    n = min(n, select(params.N / 2u, params.N, r >= OUT_ROWS) - 1u);
//#else
    n = min(n, params.row_end - 1u);
//#endif
    row_global[r] = n;
    row_unit[r] = ((e - params.expert_begin) * params.N + (n - params.row_begin)) * (params.K / 16u);
  }

  var acc: array<f32, ALL_SLOTS>;
  for (var u = tk; u < units; u += TPK) {
    var w: array<mat4x4<f32>, ROWS>;
    var s: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      w[r] = load_unit(row_unit[r] + u);
      s[r] = unit_scale(e, row_global[r], u);
    }
    for (var i = 0u; i < M_TILE; i++) {
      let raw = load_x_raw(xrow[i], u);
//#if RMS_NORM
      acc[SLOTS + i] += mdot(raw, raw);
//#endif
      let xu = scale_x(raw, u, e);
      for (var r = 0u; r < ROWS; r++) {
        acc[r * M_TILE + i] += s[r] * mdot(w[r], xu);
      }
    }
  }

  // Row-group reduction: partials[part * slots_per_wg + slot], part = subgroup (or thread) within the row group.
  let slots_per_wg = ROW_GROUPS * ALL_SLOTS;
//#if SUBGROUPS
  let num_parts = TPK / sg_size;
  for (var j = 0u; j < ALL_SLOTS; j++) {
    let v = subgroupAdd(acc[j]);
    if (sg_lane == 0u) {
      partials[(tk / sg_size) * slots_per_wg + group * ALL_SLOTS + j] = v;
    }
  }
//#else
  let num_parts = TPK;
  for (var j = 0u; j < ALL_SLOTS; j++) {
    partials[tk * slots_per_wg + group * ALL_SLOTS + j] = acc[j];
  }
//#endif
  workgroupBarrier();

  // Outputs (row group, out row, tile entry) are spread over the workgroup's threads; a thread takes several
  // when ROWS·M_TILE exceeds TPK (e.g. M_TILE 16 with TPK 8).
  if (!has_expert) {
    return;
  }
  for (var t = lid; t < ROW_GROUPS * OUT_ROWS * M_TILE; t += TPK * ROW_GROUPS) {
    let i = t % M_TILE;
    let g = t / M_TILE / OUT_ROWS;
    let ro = (t / M_TILE) % OUT_ROWS;
    let entry = tile * M_TILE + i;
    let o = weight_row(rb, g, ro); // output column (the gate row under SILU_MUL)
    if (entry >= params.M || !out_row_valid(o)) {
      continue;
    }
//#if GROUPED
    if (entry_rows[entry] == NO_ROW) {
      continue;
    }
//#endif
    let slot = g * ALL_SLOTS + ro * M_TILE + i;
    var inv_rms = 1.0;
//#if RMS_NORM
    var ss = 0.0;
    for (var p = 0u; p < num_parts; p++) {
      ss += partials[p * slots_per_wg + g * ALL_SLOTS + SLOTS + i];
    }
    inv_rms = inverseSqrt(ss / f32(params.K) + params.norm_eps);
//#endif
    var y = 0.0;
    for (var p = 0u; p < num_parts; p++) {
      y += partials[p * slots_per_wg + slot];
    }
    y *= row_factor(e, o) * inv_rms;
//#if SILU_MUL
    var up = 0.0;
    for (var p = 0u; p < num_parts; p++) {
      up += partials[p * slots_per_wg + slot + OUT_ROWS * M_TILE];
    }
    up *= row_factor(e, o + params.N / 2u) * inv_rms;
    y = y / (1.0 + exp(-y)) * up;
//#endif
    let idx = entry * params.out_stride + o;
//#if RESIDUAL
    y += f32(residual[idx]);
//#endif
//#if ACCUMULATE
    y += f32(out[idx]);
//#endif
    out[idx] = dst_t(y);
  }
}

// moe_block_down: the MoE down projection, routing weights, sum over the k experts and residual in one dispatch
// (decode): out[t, n] = residual[t, n] + Σ_j w[t, j] · Σ_i act[t·k + j, i] · W[e_j, n, i],  e_j = ids[t, j].
// WGSL has no float atomics, so the sum over j happens inside the workgroup: the k experts' rows are one long
// reduction axis of k·I/16 units, strided over TPK threads, then tree-reduced in workgroup memory.
//   act: f32 (T·k, I) rows in pair order (p = t·k + j, what the gate_up matvec wrote) · W: [E, H, I]
//   (kernels/weight_format.ts) · ids u32 / weights f32 (T, k) from the router · residual, out: f32 (T, H)
// Bindings: 0 params · 1 act · 2 w_data · 3 w_scales (NVFP4 E4M3 bytes [E, H, I/16] / FP8 f32 [E, gn, gk]) ·
//   4 w_global f32 [E, G] (NVFP4) · 5 topk_ids · 6 topk_weights · 7 residual (RESIDUAL; else out is added to) · 8 out
// Formats (one flag): NVFP4 (unit = vec2<u32>), FP8 (vec4<u32>), BF16 (2 × vec4<u32>), F32 (4 × vec4<f32>).
// Work split: workgroup = one token × ROW_GROUPS·ROWS output rows; row group g owns ROWS rows; ROWS (a const the
// wrapper prepends, ≤ TPK) accumulators per thread.
//#include dequant

struct Params {
  H: u32, // output columns = rows of one expert's W
  I: u32, // reduction length per expert, a multiple of 16
  T: u32,
  k: u32,
  row_blocks: u32, // workgroups per token
  grid_x: u32, // workgroup index = wid.y · grid_x + wid.x
  rows_per_global: u32, // NVFP4: H / G
  num_global: u32, // NVFP4: G
  scale_bn: u32, // FP8 scale blocks (bn, bk) and grid (gn, gk)
  scale_bk: u32,
  scale_gn: u32,
  scale_gk: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> act: array<vec4<f32>>;
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
@group(0) @binding(5) var<storage, read> topk_ids: array<u32>;
@group(0) @binding(6) var<storage, read> topk_weights: array<f32>;
//#if RESIDUAL
@group(0) @binding(7) var<storage, read> residual: array<f32>;
//#endif
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

override TPK: u32 = 32u; // threads along the reduction per row group, a power of two ≥ ROWS
override ROW_GROUPS: u32 = 4u;

var<workgroup> red: array<f32, ROW_GROUPS * ROWS * TPK>;

// The 16 weights of unit `idx` (units from the start of w_data); column j holds i = 4j..4j+3.
fn load_unit(idx: u32) -> mat4x4<f32> {
//#if NVFP4
  let w = w_data[idx];
  var m: mat4x4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let word = select(w.x, w.y, j >= 2u) >> (16u * (j & 1u));
    m[j] = vec4<f32>(e2m1_to_f32(word & 0xFu), e2m1_to_f32((word >> 4u) & 0xFu),
                     e2m1_to_f32((word >> 8u) & 0xFu), e2m1_to_f32((word >> 12u) & 0xFu));
  }
  return m;
//#endif
//#if FP8
  let w = w_data[idx];
  var m: mat4x4<f32>;
  for (var j = 0u; j < 4u; j++) {
    let word = w[j];
    m[j] = vec4<f32>(e4m3_to_f32(word & 0xFFu), e4m3_to_f32((word >> 8u) & 0xFFu),
                     e4m3_to_f32((word >> 16u) & 0xFFu), e4m3_to_f32(word >> 24u));
  }
  return m;
//#endif
//#if BF16
  let lo = w_data[2u * idx];
  let hi = w_data[2u * idx + 1u];
  return mat4x4<f32>(vec4<f32>(bf16_to_f32(lo.x), bf16_to_f32(lo.x >> 16u), bf16_to_f32(lo.y), bf16_to_f32(lo.y >> 16u)),
                     vec4<f32>(bf16_to_f32(lo.z), bf16_to_f32(lo.z >> 16u), bf16_to_f32(lo.w), bf16_to_f32(lo.w >> 16u)),
                     vec4<f32>(bf16_to_f32(hi.x), bf16_to_f32(hi.x >> 16u), bf16_to_f32(hi.y), bf16_to_f32(hi.y >> 16u)),
                     vec4<f32>(bf16_to_f32(hi.z), bf16_to_f32(hi.z >> 16u), bf16_to_f32(hi.w), bf16_to_f32(hi.w >> 16u)));
//#endif
//#if F32
  return mat4x4<f32>(w_data[4u * idx], w_data[4u * idx + 1u], w_data[4u * idx + 2u], w_data[4u * idx + 3u]);
//#endif
}

// Every scale that multiplies unit u of row n of expert e (block, global, fp8 cell).
fn unit_scale(e: u32, n: u32, u: u32) -> f32 {
//#if NVFP4
  let b = (e * params.H + n) * (params.I / 16u) + u;
  let block = e4m3_to_f32((w_scales[b >> 2u] >> (8u * (b & 3u))) & 0xFFu);
  return block * w_global[e * params.num_global + n / params.rows_per_global];
//#endif
//#if FP8
  return w_scales[(e * params.scale_gn + n / params.scale_bn) * params.scale_gk + (16u * u) / params.scale_bk];
//#endif
//#if BF16
  return 1.0;
//#endif
//#if F32
  return 1.0;
//#endif
}

fn mdot(a: mat4x4<f32>, b: mat4x4<f32>) -> f32 {
  return dot(a[0], b[0]) + dot(a[1], b[1]) + dot(a[2], b[2]) + dot(a[3], b[3]);
}

@compute @workgroup_size(TPK * ROW_GROUPS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * params.grid_x + wid.x;
  let t = wg / params.row_blocks;
  if (t >= params.T) {
    return; // whole workgroups only: the barriers below stay uniform
  }
  let group = lid / TPK;
  let tk = lid % TPK;
  let units = params.I / 16u;
  let n0 = ((wg % params.row_blocks) * ROW_GROUPS + group) * ROWS;

  var acc: array<f32, ROWS>;
  for (var q = tk; q < params.k * units; q += TPK) {
    let j = q / units;
    let u = q - j * units;
    let pair = t * params.k + j;
    let e = topk_ids[pair];
    let c = topk_weights[pair];
    let a = (pair * params.I + 16u * u) / 4u;
    let xa = mat4x4<f32>(act[a], act[a + 1u], act[a + 2u], act[a + 3u]);
    for (var r = 0u; r < ROWS; r++) {
      let n = min(n0 + r, params.H - 1u); // rows past H compute a copy of the last row, never written
      acc[r] += c * unit_scale(e, n, u) * mdot(load_unit((e * params.H + n) * units + u), xa);
    }
  }

  let base = group * ROWS * TPK;
  for (var r = 0u; r < ROWS; r++) {
    red[base + r * TPK + tk] = acc[r];
  }
  workgroupBarrier();
  for (var s = TPK / 2u; s > 0u; s >>= 1u) {
    if (tk < s) {
      for (var r = 0u; r < ROWS; r++) {
        red[base + r * TPK + tk] += red[base + r * TPK + tk + s];
      }
    }
    workgroupBarrier();
  }
  if (tk < ROWS && n0 + tk < params.H) {
    let idx = t * params.H + n0 + tk;
    let y = red[base + tk * TPK];
//#if RESIDUAL
    out[idx] = residual[idx] + y;
//#else
    out[idx] = out[idx] + y;
//#endif
  }
}

// elementwise: the small memory-bound ops between the matmuls. One op per variant, chosen by flag:
//   ADD       h[i] += y[i]                                  h: (n) f32, read_write · y: (n) src_t
//   SILU_MUL  out[r, i] = silu(gu[r, i]) · gu[r, I + i]     gu: (rows, 2I) src_t (gate first, as HF chunk(2)) ·
//                                                           out: (rows, I) dst_t
//   COMBINE   out[t, h] = res[t, h] + Σ_j w[t, j] · y[t·k + j, h]   (MoE: pairs in t-major order, j = rank)
//             w: (T, k) f32 · y: (T·k, H) src_t · res, out: (T, H) f32; with INPLACE res is out (read_write)
//   CAST      out[i] = dst_t(x[i])                          x: (n) src_t · out: (n) dst_t
// Math in f32. One invocation per output element, so sums have a fixed order (no float atomics in WGSL): COMBINE
// adds the k weighted rows in rank order j = 0..k-1, then the residual (HF adds experts in expert-id order; the
// difference is f32 rounding only). Elements map to invocations as i = (wid.y · grid_x + wid.x) · WG_SIZE + lid.
// Types come from `alias src_t` / `alias dst_t` lines the wrapper prepends.

struct Params {
  n: u32, // output elements
  cols: u32, // SILU_MUL: I · COMBINE: H
  k: u32, // COMBINE: experts per token
  grid_x: u32, // workgroups in x
}

@group(0) @binding(0) var<uniform> params: Params;
//#if ADD
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<src_t>;
//#endif
//#if SILU_MUL
@group(0) @binding(1) var<storage, read> gu: array<src_t>;
@group(0) @binding(2) var<storage, read_write> out: array<dst_t>;
//#endif
//#if COMBINE
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<src_t>;
//#if INPLACE
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
//#else
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
//#endif
//#endif
//#if CAST
@group(0) @binding(1) var<storage, read> x: array<src_t>;
@group(0) @binding(2) var<storage, read_write> out: array<dst_t>;
//#endif

override WG_SIZE: u32 = 256;

fn silu(v: f32) -> f32 {
  return v / (1.0 + exp(-v)); // exp overflow gives v / inf = -0 for very negative v, as torch does
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * params.grid_x + wid.x) * WG_SIZE + lid;
  if (i >= params.n) {
    return;
  }
//#if ADD
  h[i] += f32(y[i]);
//#endif
//#if SILU_MUL
  let r = i / params.cols;
  let c = i - r * params.cols;
  let base = r * 2u * params.cols;
  out[i] = dst_t(silu(f32(gu[base + c])) * f32(gu[base + params.cols + c]));
//#endif
//#if COMBINE
  let t = i / params.cols;
  let col = i - t * params.cols;
  var acc = 0.0;
  for (var j = 0u; j < params.k; j++) {
    let pair = t * params.k + j;
    acc += w[pair] * f32(y[pair * params.cols + col]);
  }
//#if INPLACE
  out[i] += acc;
//#else
  out[i] = res[i] + acc;
//#endif
//#endif
//#if CAST
  out[i] = dst_t(x[i]);
//#endif
}

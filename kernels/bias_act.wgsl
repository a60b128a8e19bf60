// bias_act: the bias add and activation after a matmul (the GEMMs have no bias epilogue), in f32, one invocation
// per element:
//   y = act(x[r, c] + b[c])      b only with BIAS; act = identity, GELU_TANH or GELU_ERF
//   in place: x[r, c] = y        with RESIDUAL: h[r, c] += y (x read only), the residual-stream update
// x, h: (rows, cols) f32 · b: (cols) f32. Elements map to invocations as i = (wid.y · grid_x + wid.x) · WG_SIZE + lid.
// GELU_TANH is torch's gelu(approximate='tanh') written as x · sigmoid(2u) = x / (1 + exp(−2u)), u = √(2/π)(x + 0.044715x³)
// (the same function as 0.5x(1 + tanh u), without tanh's precision and overflow pitfalls). GELU_ERF is nn.GELU():
// 0.5x(1 + erf(x/√2)) with erf from a rational approximation (see erf_f32).

struct Params {
  n: u32, // elements
  cols: u32,
  grid_x: u32, // workgroups in x
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
//#if RESIDUAL
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
//#else
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
//#endif
//#if BIAS
//#if RESIDUAL
@group(0) @binding(3) var<storage, read> b: array<f32>;
//#else
@group(0) @binding(2) var<storage, read> b: array<f32>;
//#endif
//#endif

override WG_SIZE: u32 = 256;

// erf in f32: x·P(x²)/Q(x²) on x clamped to [−4, 4] (the rational approximation Eigen and XLA use for float erf;
// erf(±4) rounds to ±1 in f32). Max |error| 4.3e-7 over [−8, 8] in f32 arithmetic (test/kernels/bias_act.test.ts).
fn erf_f32(v: f32) -> f32 {
  let x = clamp(v, -4.0, 4.0);
  let x2 = x * x;
  var p = -2.72614225801306e-10;
  p = p * x2 + 2.77068142495902e-08;
  p = p * x2 - 2.10102402082508e-06;
  p = p * x2 - 5.69250639462346e-05;
  p = p * x2 - 7.34990630326855e-04;
  p = p * x2 - 2.95459980854025e-03;
  p = p * x2 - 1.60960333262415e-02;
  var q = -1.45660718464996e-05;
  q = q * x2 - 2.13374055278905e-04;
  q = q * x2 - 1.68282697438203e-03;
  q = q * x2 - 7.37332916720468e-03;
  q = q * x2 - 1.42647390514189e-02;
  return x * p / q;
}

fn act(v: f32) -> f32 {
//#if GELU_TANH
  let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
  return v / (1.0 + exp(-2.0 * u)); // exp overflow gives v / inf = −0 for very negative v
//#else
//#if GELU_ERF
  return 0.5 * v * (1.0 + erf_f32(v * 0.7071067811865476));
//#else
  return v;
//#endif
//#endif
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * params.grid_x + wid.x) * WG_SIZE + lid;
  if (i >= params.n) {
    return;
  }
  var v = x[i];
//#if BIAS
  v += b[i % params.cols];
//#endif
//#if RESIDUAL
  h[i] += act(v);
//#else
  x[i] = act(v);
//#endif
}

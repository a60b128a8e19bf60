// attention_decode_reduce: combines the split-K partitions of attention_decode (flash-decoding's second pass).
// Partition p holds acc_p = Σ exp(s − m_p)·v and (m_p, l_p = Σ exp(s − m_p)); with M = max m_p:
//   out = v_scale · Σ_p exp(m_p − M)·acc_p / Σ_p exp(m_p − M)·l_p
// Grid: (Hq, numSeqs); one thread per vec4 of head_dim (each thread recomputes M and the weights: few partitions).
// Header from the wrapper: HEAD_DIM.

struct Params {
  num_q_heads: u32,
  max_partitions: u32,
  v_scale: f32,
}

struct Step {
  num_seqs: u32,
  num_tokens: u32,
  num_partitions: u32,
  partition_size: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> context_lens: array<u32>;
@group(0) @binding(3) var<storage, read> part_acc: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

const D4: u32 = HEAD_DIM / 4u;

@compute @workgroup_size(D4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let seq = wid.y;
  let ctx = context_lens[seq];
  let row = seq * params.num_q_heads + head;
  let parts = (ctx + step.partition_size - 1u) / step.partition_size;
  let ml_base = row * params.max_partitions;
  var big_m = -3.0e38;
  for (var p = 0u; p < parts; p++) {
    big_m = max(big_m, part_ml[ml_base + p].x);
  }
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  for (var p = 0u; p < parts; p++) {
    let ml = part_ml[ml_base + p];
    let w = exp(ml.x - big_m);
    l += w * ml.y;
    acc += w * part_acc[(ml_base + p) * D4 + lid];
  }
  out[row * D4 + lid] = select(vec4<f32>(0.0), acc * (params.v_scale / l), parts > 0u);
}

// attention_decode: one query token per sequence against its paged K/V (flash-decoding / split-K).
// q:            token rows `q_token_stride4` vec4s apart (a fused qkv buffer works), head h at q_offset4 + h·D/4
// block_tables: u32 [maxSeqs, max_blocks], context_lens: u32 [maxSeqs] (0 = padding slot: output 0)
// out:          f32 [numSeqs, Hq, D]
// Grid: (Hq, numSeqs, numPartitions). Workgroup (head, seq, part) covers context tokens [part·P, min((part+1)·P,
// ctx)), P = the step's partition size: the partition's scores go to workgroup memory, softmax in f32, then the
// weighted V sum. With one partition it writes the normalized output; otherwise it writes the unnormalized sum
// and (max, sum of exp) per partition for attention_decode_reduce. Query head h reads kv head h / group (GQA).
// Scales: q is multiplied by k_scale/sqrt(D) on load, the output by v_scale (FP8 caches; 1 otherwise).
// Header from the wrapper: kv_word_t, UNITS_PER_ROW, HEAD_DIM, MAX_PART, WG_SIZE (a power of two ≥ UNITS_PER_ROW).

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  group: u32,
  q_token_stride4: u32,
  q_offset4: u32,
  max_blocks: u32,
  max_partitions: u32,
  units_per_row: u32, // = UNITS_PER_ROW, as a loop bound that is not unrolled
  q_scale: f32,
  v_scale: f32,
  wg_size: u32, // = WG_SIZE, as the reductions' loop bound: unrolled, their barriers triple lavapipe's compile time
}

struct Step {
  num_seqs: u32,
  num_tokens: u32,
  num_partitions: u32,
  partition_size: u32, // ≤ MAX_PART
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> block_tables: array<u32>;
@group(0) @binding(4) var<storage, read> context_lens: array<u32>;
@group(0) @binding(5) var<storage, read> k_cache: array<kv_word_t>;
@group(0) @binding(6) var<storage, read> v_cache: array<kv_word_t>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;
// [maxSeqs, Hq, max_partitions, D] partial sums and [maxSeqs, Hq, max_partitions] (max, sum of exp)
@group(0) @binding(8) var<storage, read_write> part_acc: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> part_ml: array<vec2<f32>>;

//#include dequant
//#include kv_cache

const D4: u32 = HEAD_DIM / 4u;
const TOKEN_GROUPS: u32 = WG_SIZE / UNITS_PER_ROW;

var<workgroup> q_sh: array<vec4<f32>, D4>;
var<workgroup> scores: array<f32, MAX_PART>;
var<workgroup> red: array<f32, WG_SIZE>;
var<workgroup> acc_sh: array<vec4<f32>, 2 * WG_SIZE>;

fn reduce_max(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = params.wg_size / 2u; s > 0u; s /= 2u) {
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = params.wg_size / 2u; s > 0u; s /= 2u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let seq = wid.y;
  let part = wid.z;
  let ctx = context_lens[seq];
  let part_size = step.partition_size;
  let start = part * part_size;
  let single = step.num_partitions == 1u;
  let out_base = (seq * params.num_q_heads + head) * D4;
  if (ctx == 0u) {
    // A padding slot: zeros rather than 0/0 (the reduce pass does the same for several partitions).
    if (single && lid < D4) {
      out[out_base + lid] = vec4<f32>(0.0);
    }
    return;
  }
  if (start >= ctx) {
    return; // beyond this sequence; the reduce pass only reads partitions < ceil(ctx / P)
  }
  let n = min(ctx - start, part_size);
  let kvh = head / params.group;
  let hkv = params.num_kv_heads;
  let table = seq * params.max_blocks;

  let q_base = seq * params.q_token_stride4 + params.q_offset4 + head * D4;
  for (var i = lid; i < D4; i += WG_SIZE) {
    q_sh[i] = q[q_base + i] * params.q_scale;
  }
  workgroupBarrier();

  // Scores: a thread per token; K tiles are unit-major, so neighbouring threads read neighbouring units.
  var m = -3.0e38;
  for (var t = lid; t < n; t += WG_SIZE) {
    let tok = start + t;
    let block = block_tables[table + tok / 16u];
    var s = 0.0;
    // The bound comes from the uniform: a constant one gets unrolled, which costs lavapipe ~5x the compile time.
    for (var u = 0u; u < params.units_per_row; u++) {
      let k = load_k_unit(k_unit_index(block, kvh, hkv, tok % 16u, u));
      s += dot(k.lo, q_sh[2u * u]) + dot(k.hi, q_sh[2u * u + 1u]);
    }
    scores[t] = s;
    m = max(m, s);
  }
  let m_all = reduce_max(lid, m);
  var l = 0.0;
  for (var t = lid; t < n; t += WG_SIZE) {
    let p = exp(scores[t] - m_all);
    scores[t] = p;
    l += p;
  }
  let l_all = reduce_sum(lid, l); // its barriers also publish the p values

  // Weighted V: thread (token group g, unit u); V tiles are token-major, so a group reads one row per token.
  let u = lid % UNITS_PER_ROW;
  let g = lid / UNITS_PER_ROW;
  var lo = vec4<f32>(0.0);
  var hi = vec4<f32>(0.0);
  if (g < TOKEN_GROUPS) {
    for (var t = g; t < n; t += TOKEN_GROUPS) {
      let tok = start + t;
      let block = block_tables[table + tok / 16u];
      let v = load_v_unit(v_unit_index(block, kvh, hkv, tok % 16u, u));
      let p = scores[t];
      lo += p * v.lo;
      hi += p * v.hi;
    }
  }
  acc_sh[2u * lid] = lo;
  acc_sh[2u * lid + 1u] = hi;
  workgroupBarrier();
  if (lid < UNITS_PER_ROW) {
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var j = 0u; j < TOKEN_GROUPS; j++) {
      a += acc_sh[2u * (j * UNITS_PER_ROW + lid)];
      b += acc_sh[2u * (j * UNITS_PER_ROW + lid) + 1u];
    }
    if (single) {
      let f = params.v_scale / l_all;
      out[out_base + 2u * lid] = a * f;
      out[out_base + 2u * lid + 1u] = b * f;
    } else {
      let pb = ((seq * params.num_q_heads + head) * params.max_partitions + part) * D4;
      part_acc[pb + 2u * lid] = a;
      part_acc[pb + 2u * lid + 1u] = b;
    }
  }
  if (!single && lid == 0u) {
    part_ml[(seq * params.num_q_heads + head) * params.max_partitions + part] = vec2<f32>(m_all, l_all);
  }
}

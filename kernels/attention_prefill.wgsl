// attention_prefill: causal attention for several sequences of different lengths in one dispatch, K/V read from
// the paged cache (the new tokens' K/V are written there first), so a chunk whose context starts with a cached
// prefix works the same way (chunked prefill: query row i of a sequence sits at position ctx − qlen + i).
// q:            token rows `q_token_stride4` vec4s apart, head h at q_offset4 + h·D/4; tokens packed by sequence
// query_start:  u32 [numSeqs + 1], cu_seqlens style: sequence s owns q rows [query_start[s], query_start[s+1])
// context_lens: u32 [numSeqs] (cached + new tokens), block_tables: u32 [maxSeqs, max_blocks]
// out:          f32 [T, Hq, D]
// Grid: x = ceil(T / BQ) + numSeqs (an upper bound on the tiles; extra workgroups leave), y = Hq.
// A workgroup takes BQ query rows of one sequence and one head; it walks the key blocks of 16 tokens (one cache
// block each) up to the tile's last position with an online softmax in f32 (flash-attention style). TPR threads
// share a query row: each computes 16/TPR of the block's scores in full and owns D/TPR output dims.
// Scales: q is multiplied by k_scale/sqrt(D) on load, the output by v_scale.
// Header from the wrapper: kv_word_t, UNITS_PER_ROW, HEAD_DIM, BQ, TPR, WG_SIZE = BQ·TPR.

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  group: u32,
  q_token_stride4: u32,
  q_offset4: u32,
  max_blocks: u32,
  d4: u32, // = D/4 and
  block_tokens: u32, // = 16, as loop bounds that are not unrolled (unrolled, lavapipe compiles ~10x longer)
  q_scale: f32,
  v_scale: f32,
}

struct Step {
  num_seqs: u32,
  num_tokens: u32,
  num_partitions: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> query_start: array<u32>;
@group(0) @binding(4) var<storage, read> context_lens: array<u32>;
@group(0) @binding(5) var<storage, read> block_tables: array<u32>;
@group(0) @binding(6) var<storage, read> k_cache: array<kv_word_t>;
@group(0) @binding(7) var<storage, read> v_cache: array<kv_word_t>;
@group(0) @binding(8) var<storage, read_write> out: array<vec4<f32>>;

//#include dequant
//#include kv_cache

const D4: u32 = HEAD_DIM / 4u;
const DPT4: u32 = D4 / TPR; // vec4s of the output row each thread owns
const MASKED: f32 = -3.0e38; // a masked score (finite: WGSL has no infinity literal)

var<workgroup> q_sh: array<vec4<f32>, BQ * D4>;
var<workgroup> kv_sh: array<vec4<f32>, 16u * D4>; // this block's K, then its V, as [16 tokens][D]
var<workgroup> s_sh: array<f32, BQ * 16u>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let head = wid.y;
  // Which sequence this tile belongs to: tiles are numbered sequence by sequence.
  var tile = wid.x;
  var seq = 0u;
  var found = false;
  for (var s = 0u; s < step.num_seqs; s++) {
    let tiles = (query_start[s + 1u] - query_start[s] + BQ - 1u) / BQ;
    if (tile < tiles) {
      seq = s;
      found = true;
      break;
    }
    tile -= tiles;
  }
  if (!found) {
    return;
  }
  let q0 = query_start[seq];
  let qlen = query_start[seq + 1u] - q0;
  let ctx = context_lens[seq];
  let t0 = tile * BQ;
  let rows = min(BQ, qlen - t0);
  let first_pos = ctx - qlen + t0; // position of the tile's first query row
  let num_blocks = (first_pos + rows - 1u) / 16u + 1u;
  let kvh = head / params.group;
  let hkv = params.num_kv_heads;
  let table = seq * params.max_blocks;

  for (var i = lid; i < BQ * D4; i += WG_SIZE) {
    let r = i / D4;
    var v = vec4<f32>(0.0);
    if (r < rows) {
      v = q[(q0 + t0 + r) * params.q_token_stride4 + params.q_offset4 + head * D4 + i % D4] * params.q_scale;
    }
    q_sh[i] = v;
  }

  let r = lid / TPR;
  let c = lid % TPR;
  let qpos = first_pos + r;
  var m = MASKED;
  var l = 0.0;
  var acc: array<vec4<f32>, DPT4>;
  for (var b = 0u; b < num_blocks; b++) {
    let block = block_tables[table + b];
    let base_pos = b * 16u;
    workgroupBarrier(); // q_sh is written / the previous block's V reads are done
    for (var i = lid; i < 16u * UNITS_PER_ROW; i += WG_SIZE) {
      let u = i / 16u; // K tiles are unit-major: neighbouring threads take neighbouring tokens
      let off = i % 16u;
      var k = KvUnit(vec4<f32>(0.0), vec4<f32>(0.0));
      if (base_pos + off < ctx) {
        k = load_k_unit(k_unit_index(block, kvh, hkv, off, u));
      }
      kv_sh[off * D4 + 2u * u] = k.lo;
      kv_sh[off * D4 + 2u * u + 1u] = k.hi;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < 16u / TPR; jj++) {
      let j = c + jj * TPR;
      var s = 0.0;
      for (var d = 0u; d < params.d4; d++) {
        s += dot(q_sh[r * D4 + d], kv_sh[j * D4 + d]);
      }
      s_sh[r * 16u + j] = select(MASKED, s, base_pos + j <= qpos);
    }
    workgroupBarrier();
    for (var i = lid; i < 16u * UNITS_PER_ROW; i += WG_SIZE) {
      let off = i / UNITS_PER_ROW; // V tiles are token-major
      let u = i % UNITS_PER_ROW;
      var v = KvUnit(vec4<f32>(0.0), vec4<f32>(0.0));
      if (base_pos + off < ctx) {
        v = load_v_unit(v_unit_index(block, kvh, hkv, off, u));
      }
      kv_sh[off * D4 + 2u * u] = v.lo;
      kv_sh[off * D4 + 2u * u + 1u] = v.hi;
    }
    workgroupBarrier();
    var m_blk = MASKED;
    for (var j = 0u; j < 16u; j++) {
      m_blk = max(m_blk, s_sh[r * 16u + j]);
    }
    let m_new = max(m, m_blk);
    let alpha = exp(m - m_new);
    l *= alpha;
    for (var k = 0u; k < DPT4; k++) {
      acc[k] *= alpha;
    }
    for (var j = 0u; j < params.block_tokens; j++) {
      let sj = s_sh[r * 16u + j];
      let p = select(0.0, exp(sj - m_new), sj > -1.0e38);
      l += p;
      for (var k = 0u; k < DPT4; k++) {
        acc[k] += p * kv_sh[j * D4 + c * DPT4 + k];
      }
    }
    m = m_new;
  }
  if (r < rows) {
    let f = params.v_scale / l;
    let ob = ((q0 + t0 + r) * params.num_q_heads + head) * D4 + c * DPT4;
    for (var k = 0u; k < DPT4; k++) {
      out[ob + k] = acc[k] * f;
    }
  }
}

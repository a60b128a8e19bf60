// moe_align: groups (token, expert) pairs by expert on the GPU for the grouped GEMM (vLLM's moe_align_block_size):
// counts per expert, padded prefix sum, stable scatter, expert id per row tile, indirect dispatch arguments.
// Output layout: kernels/moe_align_layout.ts. One workgroup; the whole thing is one dispatch and rewrites every
// output, so nothing needs clearing between steps.
//
//   topk_ids: u32 [num_pairs] (pair p = token·topk + j; ids ≥ num_experts are routed elsewhere and get no row)
//   routing: u32 [max_padded_rows + max_tiles] · expert_offsets: u32 [E + 1] · counts: u32 [E]
//   scratch: u32 [WG_SIZE, E] (per-invocation counts, then write cursors) · dispatch_args: u32 [num_consumers, 3]
//
// Invocation i owns the contiguous pair range [i·chunk, (i+1)·chunk): it counts its pairs per expert, the
// invocations turn (invocation, expert) counts into positions expert by expert, and each invocation scatters its
// range in order, so every expert's rows list its pairs in ascending order (deterministic, and tokens in order).

struct Params {
  num_pairs: u32,
  num_experts: u32, // ≤ MAX_EXPERTS
  block_m: u32, // rows per tile of the grouped GEMM that reads the routing
  max_padded_rows: u32,
  max_tiles: u32,
  num_consumers: u32, // grouped GEMMs whose indirect arguments this writes (≤ 8)
  _pad0: u32,
  _pad1: u32,
  grid_n: array<vec4<u32>, 2>, // workgroups along N of each consumer
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> topk_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> routing: array<u32>;
@group(0) @binding(3) var<storage, read_write> expert_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(6) var<storage, read_write> dispatch_args: array<u32>;

override WG_SIZE: u32 = 256u;
override MAX_EXPERTS: u32 = 512u;
const NO_PAIR: u32 = 0xffffffffu;
const NO_EXPERT: u32 = 0xffffffffu;

var<workgroup> expert_count: array<u32, MAX_EXPERTS>;
var<workgroup> expert_start: array<u32, MAX_EXPERTS + 1u>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  let num_experts = params.num_experts;
  let bm = params.block_m;
  let chunk = (params.num_pairs + WG_SIZE - 1u) / WG_SIZE;
  let p0 = min(params.num_pairs, lid * chunk);
  let p1 = min(params.num_pairs, p0 + chunk);
  let mine = lid * num_experts;

  // 1. This invocation's pairs per expert.
  for (var e = 0u; e < num_experts; e++) {
    scratch[mine + e] = 0u;
  }
  for (var p = p0; p < p1; p++) {
    let e = topk_ids[p];
    if (e < num_experts) {
      scratch[mine + e] += 1u;
    }
  }
  storageBarrier();

  // 2. Pairs per expert.
  for (var e = lid; e < num_experts; e += WG_SIZE) {
    var c = 0u;
    for (var t = 0u; t < WG_SIZE; t++) {
      c += scratch[t * num_experts + e];
    }
    expert_count[e] = c;
  }
  workgroupBarrier();

  // 3. Padded start row of each expert (a serial scan: E is a few hundred at most).
  if (lid == 0u) {
    var start = 0u;
    for (var e = 0u; e < num_experts; e++) {
      expert_start[e] = start;
      start += (expert_count[e] + bm - 1u) / bm * bm;
    }
    expert_start[num_experts] = start;
  }
  workgroupBarrier();
  let total = expert_start[num_experts];

  // 4. Per expert: counts, offsets, write cursors per invocation, padding rows, tile experts.
  for (var e = lid; e < num_experts; e += WG_SIZE) {
    let start = expert_start[e];
    let end = expert_start[e + 1u];
    counts[e] = expert_count[e];
    expert_offsets[e] = start;
    var pos = start;
    for (var t = 0u; t < WG_SIZE; t++) {
      let c = scratch[t * num_experts + e];
      scratch[t * num_experts + e] = pos;
      pos += c;
    }
    for (var r = pos; r < end; r++) {
      routing[r] = NO_PAIR;
    }
    for (var t = start / bm; t < end / bm; t++) {
      routing[params.max_padded_rows + t] = e;
    }
  }
  for (var r = total + lid; r < params.max_padded_rows; r += WG_SIZE) {
    routing[r] = NO_PAIR;
  }
  for (var t = total / bm + lid; t < params.max_tiles; t += WG_SIZE) {
    routing[params.max_padded_rows + t] = NO_EXPERT;
  }
  if (lid == 0u) {
    expert_offsets[num_experts] = total;
    for (var c = 0u; c < params.num_consumers; c++) {
      dispatch_args[3u * c] = total / bm;
      dispatch_args[3u * c + 1u] = params.grid_n[c / 4u][c % 4u];
      dispatch_args[3u * c + 2u] = 1u;
    }
  }
  storageBarrier();

  // 5. Scatter this invocation's pairs in order.
  for (var p = p0; p < p1; p++) {
    let e = topk_ids[p];
    if (e < num_experts) {
      let at = mine + e;
      routing[scratch[at]] = p;
      scratch[at] += 1u;
    }
  }
}

// sampling: per row of logits [rows, vocab] f32 pick one token as vLLM's V1 sampler does
//   penalties (min_tokens suppression, repetition, frequency, presence) → temperature → min_p → top-k → top-p →
//   exponential race (argmax x_i - log(E_i), E_i = -log u_i, the Gumbel-max form of vLLM's probs / q.exponential_())
// and, when asked, the chosen token's logprob, its rank and the top-N (token, logprob) of the logprob source
// (the processed logits: after penalties and temperature, before the min_p/top-k/top-p masks; or the raw logits).
// Entry points (one module, five pipelines, recorded in this order into one pass):
//   penalize  one thread per (row, token) entry the host listed: writes the penalized raw logit into pen[] and
//             stamps it with this step's stamp (later kernels use pen[] where stamps[] == g.stamp, else logits[])
//   scan      grid (chunks, rows): per chunk of CHUNK tokens: max + argmax (lowest index on ties) of the processed
//             logits x, max + sum-exp of the logprob source y, and the race winner for rows without filters
//   combine   one thread per row: folds the chunks into the row's State (token for greedy/unfiltered rows)
//   step      one workgroup per row, dispatched as often as the neediest row needs (the host counts): one pass
//             over the row per dispatch, driving a small state machine: the exact thresholds by a 16-way search
//             over order-preserving u32 keys (8 passes of 4 bits: top-k by count, top-p by probability mass), the
//             race over the survivors, the n-th largest logprob (and which ties complete the top n), the rank
//   emit      one workgroup per row: gathers the top n, sorts them, writes the row's output record
// Masked values are NEG (finite), never inf, so nothing depends on the implementation's inf/NaN handling.

struct Globals {
  num_rows: u32,
  vocab: u32,
  stamp: u32,
  num_entries: u32,
  num_chunks: u32,
  entries_per_grid_y: u32, // penalize: entry = gid.y * entries_per_grid_y + gid.x
  pad0: u32,
  pad1: u32,
}

struct Row {
  temperature: f32,
  top_k: u32, // 0: off
  top_p: f32, // 1: off
  min_p: f32, // 0: off
  rep: f32,
  pres: f32,
  freq: f32,
  flags: u32,
  seed_lo: u32,
  seed_hi: u32,
  step: u32,
  num_top: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
  pad3: u32,
}

struct Partial {
  mx: f32,
  ax: u32,
  my: f32,
  sy: f32,
  rk: f32,
  ri: u32,
  pad0: u32,
  pad1: u32,
}

const F_LOGPROBS = 1u;
const F_RAW = 2u;
const F_PEN = 4u;
const F_GREEDY = 8u;
const F_FILTER = 16u;
const E_PROMPT = 1u;
const E_SUPPRESS = 2u;
const NEG = -3.0e38;
const NONE = 0xffffffffu;
const OUT_WORDS = 48u; // token, logprob, rank, num_top, 20 top tokens, 20 top logprobs, pad
const MAX_TOP = 20u;
const GATHER = 32u;

@group(0) @binding(0) var<uniform> g: Globals;
@group(0) @binding(1) var<storage, read> rows: array<Row>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> pen: array<f32>;
@group(0) @binding(4) var<storage, read_write> stamps: array<u32>;
@group(0) @binding(5) var<storage, read> entries: array<vec4u>; // (row, token, output count, E_* flags)
@group(0) @binding(6) var<storage, read_write> partials: array<Partial>; // [rows, num_chunks]
@group(0) @binding(7) var<storage, read_write> out: array<u32>; // [rows, OUT_WORDS]

override WG: u32 = 256; // a power of two
override CHUNK: u32 = 4096;

var<workgroup> red_u: array<u32, WG>;
var<workgroup> red_v: array<f32, WG>;
var<workgroup> red16: array<f32, 16 * WG>;
var<workgroup> sc_x: array<f32, WG>; // scan's tree: argmax of x, race winner, max and sum-exp of y
var<workgroup> sc_a: array<u32, WG>;
var<workgroup> sc_r: array<f32, WG>;
var<workgroup> sc_i: array<u32, WG>;
var<workgroup> sc_m: array<f32, WG>;
var<workgroup> sc_s: array<f32, WG>;
var<workgroup> gather_n: atomic<u32>;
var<workgroup> gather_i: array<u32, GATHER>;
var<workgroup> gather_v: array<f32, GATHER>;
var<private> lid: u32;

// ---- per-element values --------------------------------------------------------------------------------------

fn raw_logit(r: u32, i: u32) -> f32 {
  return max(logits[r * g.vocab + i], NEG);
}

/** Processed logit: penalized (where this step's penalize stamped it), then divided by the temperature. */
fn proc_x(r: u32, row: Row, i: u32) -> f32 {
  let at = r * g.vocab + i;
  var x = logits[at];
  if ((row.flags & F_PEN) != 0u && stamps[at] == g.stamp) {
    x = pen[at];
  }
  x = max(x, NEG);
  if ((row.flags & F_GREEDY) == 0u) {
    x = max(x / row.temperature, NEG);
  }
  return x;
}

/** What the logprobs refer to. */
fn src_y(r: u32, row: Row, i: u32) -> f32 {
  if ((row.flags & F_RAW) != 0u) {
    return raw_logit(r, i);
  }
  return proc_x(r, row, i);
}

/** Order-preserving key: a > b as floats ⇔ fkey(a) > fkey(b); -0 and +0 share a key. */
fn fkey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if (b == 0x80000000u) {
    return 0x80000000u;
  }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

/** Counter-based uniform in (0, 1): pcg4d (Jarzynski & Olano 2020) of (token, step, seed); 23 bits, exact in f32. */
fn uniform01(row: Row, i: u32) -> f32 {
  var v = vec4u(i, row.step, row.seed_lo, row.seed_hi) * 1664525u + 1013904223u;
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  v = v ^ (v >> vec4u(16u));
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  return (f32(v.x >> 9u) + 0.5) * (1.0 / 8388608.0);
}

/** The exponential race: argmax of p_i / E_i is a draw from p; in logits, x_i - log(E_i). */
fn race_key(row: Row, x: f32, i: u32) -> f32 {
  if (x <= NEG) {
    return NEG;
  }
  return x - log(-log(uniform01(row, i)));
}

fn survives_min_p(row: Row, x: f32, m: f32) -> bool {
  return row.min_p <= 0.0 || exp(x - m) >= row.min_p;
}

// ---- workgroup reductions (call in uniform control flow) -------------------------------------------------------

// ---- threshold search ------------------------------------------------------------------------------------------

const M_TOPK = 0u; // count of min_p survivors, key of x
const M_TOPP = 1u; // mass exp(x - m) of min_p ∩ top-k survivors (key ≥ b), key of x
const M_TOPN = 2u; // count of all tokens, key of y
const M_TIES = 3u; // count of tokens whose y key == b, key ~index (so the lowest indices rank highest)

struct KeyWeight {
  key: u32,
  w: f32,
}

fn elem(r: u32, row: Row, mode: u32, i: u32, m: f32, b: u32) -> KeyWeight {
  if (mode == M_TOPK || mode == M_TOPP) {
    let x = proc_x(r, row, i);
    let k = fkey(x);
    if (!survives_min_p(row, x, m) || k < b) {
      return KeyWeight(0u, 0.0);
    }
    return KeyWeight(k, select(exp(x - m), 1.0, mode == M_TOPK));
  }
  let k = fkey(src_y(r, row, i));
  if (mode == M_TOPN) {
    return KeyWeight(k, 1.0);
  }
  return KeyWeight(~i, select(0.0, 1.0, k == b));
}

/** The largest pivot index j in 1..15 with sums[j] ≥ goal, else 0. */
fn pick(sums: array<f32, 16>, goal: f32) -> u32 {
  var j = 0u;
  for (var k = 1u; k < 16u; k++) {
    if (sums[k] >= goal) {
      j = k;
    }
  }
  return j;
}

// Row state between the finishing dispatches (combine, then `step` repeated, then emit).
// Each step is one pass over the row and one reduction; a threshold search is 8 steps: step p sums the weight of
// keys ≥ lo + (j << shift), shift = 28 - 4p, j = 0..15, and keeps the largest pivot whose sum ≥ goal, ending at the
// largest key t with Σ_{key_i ≥ t} w_i ≥ goal (0 when even the whole row falls short). Keeping key ≥ t then keeps
// exactly the tokens whose strictly-greater weight is below goal. (One step per dispatch rather than a loop inside
// one dispatch: lavapipe compiles a shader with barriers as LLVM coroutines and takes minutes on a large one.)
const S_DONE = 0u;
const S_TOPK = 1u; // search: k-th largest min_p survivor
const S_MASS = 2u; // one pass: survivor mass after top-k
const S_TOPP = 3u; // search: the top-p cut by mass
const S_RACE = 4u; // one pass: the exponential race over the survivors
const S_TOPN = 5u; // search: the n-th largest y
const S_CNT = 6u; // one pass: tokens ≥ / > the n-th largest y (are there ties at the cut?)
const S_TIES = 7u; // search: the lowest-index ties that complete the top n
const S_RANK = 8u; // one pass: tokens with y ≥ y(token)

struct State {
  state: u32,
  token: u32,
  m: f32, // max processed logit
  lse: f32, // logsumexp of the logprob source
  y_tok: f32,
  goal: f32,
  lo: u32,
  p: u32,
  tk: u32,
  tp: u32,
  tn: u32,
  ti: u32,
  rank: f32,
  n: u32, // top logprobs to emit
  lp_start: u32, // the state after the race
  pad0: u32,
}

@group(0) @binding(8) var<storage, read_write> states: array<State>; // [rows]

var<workgroup> ws: State;
var<workgroup> reduced: Reduced;

/** Sums of 16 per-thread values and the (max, lowest index) of one more, over the workgroup. */
struct Reduced {
  sums: array<f32, 16>,
  best: vec2u,
}

fn reduce_all(sums: array<f32, 16>, v: f32, idx: u32) -> Reduced {
  workgroupBarrier();
  for (var k = 0u; k < 16u; k++) {
    red16[k * WG + lid] = sums[k];
  }
  red_v[lid] = v;
  red_u[lid] = idx;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      for (var k = 0u; k < 16u; k++) {
        red16[k * WG + lid] += red16[k * WG + lid + s];
      }
      let ov = red_v[lid + s];
      let oi = red_u[lid + s];
      let mi = red_u[lid];
      if (oi != NONE && (mi == NONE || ov > red_v[lid] || (ov == red_v[lid] && oi < mi))) {
        red_v[lid] = ov;
        red_u[lid] = oi;
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var k = 0u; k < 16u; k++) {
      reduced.sums[k] = red16[k * WG];
    }
    reduced.best = vec2u(bitcast<u32>(red_v[0]), red_u[0]);
  }
  return workgroupUniformLoad(&reduced);
}

/** The row's state, uniform across the workgroup. */
fn load_state(r: u32) -> State {
  if (lid == 0u) {
    ws = states[r];
  }
  return workgroupUniformLoad(&ws);
}

// ---- entry points ----------------------------------------------------------------------------------------------

@compute @workgroup_size(WG)
fn penalize(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.y * g.entries_per_grid_y + gid.x;
  if (e >= g.num_entries) {
    return;
  }
  let en = entries[e];
  let row = rows[en.x];
  let at = en.x * g.vocab + en.y;
  var x = max(logits[at], NEG);
  if ((en.w & E_SUPPRESS) != 0u) {
    x = NEG;
  } else {
    // vLLM: repetition over prompt ∪ output tokens (divide positive, multiply negative), then frequency × output
    // count, then presence where the output count is non-zero.
    if ((en.w & E_PROMPT) != 0u || en.z > 0u) {
      x = select(x * row.rep, x / row.rep, x > 0.0);
    }
    x = x - row.freq * f32(en.z);
    if (en.z > 0u) {
      x = x - row.pres;
    }
    x = max(x, NEG);
  }
  pen[at] = x;
  stamps[at] = g.stamp;
}

@compute @workgroup_size(WG)
fn scan(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  lid = li;
  let c = wid.x;
  let r = wid.y;
  let row = rows[r];
  let is_simple = (row.flags & (F_GREEDY | F_FILTER)) == 0u;
  let wants_y = (row.flags & F_LOGPROBS) != 0u;
  var mx = NEG;
  var ax = NONE;
  var my = NEG;
  var sy = 0.0;
  var rk = NEG;
  var ri = NONE;
  let end = min(g.vocab, (c + 1u) * CHUNK);
  for (var i = c * CHUNK + lid; i < end; i += WG) {
    let x = proc_x(r, row, i);
    if (ax == NONE || x > mx) {
      mx = x;
      ax = i;
    }
    if (wants_y) {
      let y = src_y(r, row, i);
      if (y > NEG) {
        if (y > my) {
          sy = sy * exp(my - y) + 1.0;
          my = y;
        } else {
          sy += exp(y - my);
        }
      }
    }
    if (is_simple) {
      let k = race_key(row, x, i);
      if (ri == NONE || k > rk) {
        rk = k;
        ri = i;
      }
    }
  }
  // One tree over the three results (each barrier site costs lavapipe seconds of compile time).
  sc_x[lid] = mx;
  sc_a[lid] = ax;
  sc_r[lid] = rk;
  sc_i[lid] = ri;
  sc_m[lid] = my;
  sc_s[lid] = sy;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      let o = lid + s;
      if (sc_a[o] != NONE && (sc_a[lid] == NONE || sc_x[o] > sc_x[lid] || (sc_x[o] == sc_x[lid] && sc_a[o] < sc_a[lid]))) {
        sc_x[lid] = sc_x[o];
        sc_a[lid] = sc_a[o];
      }
      if (sc_i[o] != NONE && (sc_i[lid] == NONE || sc_r[o] > sc_r[lid] || (sc_r[o] == sc_r[lid] && sc_i[o] < sc_i[lid]))) {
        sc_r[lid] = sc_r[o];
        sc_i[lid] = sc_i[o];
      }
      let m2 = max(sc_m[lid], sc_m[o]);
      sc_s[lid] = sc_s[lid] * exp(sc_m[lid] - m2) + sc_s[o] * exp(sc_m[o] - m2);
      sc_m[lid] = m2;
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    partials[r * g.num_chunks + c] = Partial(sc_x[0], sc_a[0], sc_m[0], sc_s[0], sc_r[0], sc_i[0], 0u, 0u);
  }
}

@compute @workgroup_size(1)
fn combine(@builtin(workgroup_id) wid: vec3u) {
  let r = wid.x;
  let row = rows[r];
  var mx = NEG;
  var ax = NONE;
  var my = NEG;
  var sy = 0.0;
  var rk = NEG;
  var ri = NONE;
  for (var c = 0u; c < g.num_chunks; c++) {
    let q = partials[r * g.num_chunks + c];
    if (q.ax != NONE && (ax == NONE || q.mx > mx)) {
      mx = q.mx;
      ax = q.ax;
    }
    if (q.ri != NONE && (ri == NONE || q.rk > rk)) {
      rk = q.rk;
      ri = q.ri;
    }
    let m2 = max(my, q.my);
    sy = sy * exp(my - m2) + q.sy * exp(q.my - m2);
    my = m2;
  }
  let n = min(min(row.num_top, MAX_TOP), g.vocab);
  let lp_start = select(S_DONE, select(S_RANK, S_TOPN, n > 0u), (row.flags & F_LOGPROBS) != 0u);
  var st = State(lp_start, select(ri, ax, (row.flags & F_GREEDY) != 0u), mx, select(my + log(sy), my, sy <= 0.0),
                 0.0, f32(n), 0u, 0u, 0u, 0u, 0u, 0u, 0.0, n, lp_start, 0u);
  if ((row.flags & F_FILTER) != 0u) {
    st.state = S_RACE;
    if (row.top_k > 0u) {
      st.state = S_TOPK;
      st.goal = f32(row.top_k);
    } else if (row.top_p < 1.0) {
      st.state = S_MASS;
    }
  }
  st.y_tok = src_y(r, row, st.token);
  states[r] = st;
}

@compute @workgroup_size(WG)
fn step(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  lid = li;
  let r = wid.x;
  let row = rows[r];
  let st = load_state(r);
  if (st.state == S_DONE) {
    return;
  }
  // This pass: which weights, counted from which key, in buckets of which width.
  let state = st.state;
  var mode = M_TOPN;
  var b = st.tn;
  if (state == S_TOPK || state == S_TOPP || state == S_MASS) {
    mode = select(M_TOPP, M_TOPK, state == S_TOPK);
    b = st.tk;
  } else if (state == S_TIES) {
    mode = M_TIES;
  }
  var start = st.lo;
  var shift = 28u - 4u * st.p;
  if (state == S_CNT) {
    start = st.tn;
    shift = 0u;
  } else if (state == S_RANK) {
    start = fkey(st.y_tok);
  }
  let t = max(st.tk, st.tp);
  var hist: array<f32, 16>;
  var bk = NEG;
  var bi = NONE;
  for (var i = lid; i < g.vocab; i += WG) {
    if (state == S_RACE) {
      let x = proc_x(r, row, i);
      if (survives_min_p(row, x, st.m) && fkey(x) >= t) {
        let k = race_key(row, x, i);
        if (bi == NONE || k > bk) {
          bk = k;
          bi = i;
        }
      }
    } else {
      let kw = elem(r, row, mode, i, st.m, b);
      if (kw.w > 0.0 && kw.key >= start) {
        let bucket = min(15u, (kw.key - start) >> shift);
        for (var j = 0u; j < 16u; j++) {
          hist[j] += select(0.0, kw.w, bucket >= j);
        }
      }
    }
  }
  let red_all = reduce_all(hist, bk, bi);
  if (lid != 0u) {
    return;
  }
  let sums = red_all.sums;
  var nx = st;
  switch (state) {
    case S_MASS: {
      nx.goal = row.top_p * sums[0];
      nx.state = S_TOPP;
    }
    case S_RACE: {
      nx.token = red_all.best.y;
      nx.y_tok = src_y(r, row, nx.token);
      nx.state = st.lp_start;
      nx.goal = f32(st.n);
    }
    case S_CNT: {
      // sums[0]: keys ≥ tn, sums[1]: keys > tn; more than n means ties at the cut.
      nx.state = S_RANK;
      if (sums[0] > st.goal) {
        nx.goal = st.goal - sums[1];
        nx.state = S_TIES;
      }
    }
    case S_RANK: {
      nx.rank = sums[0];
      nx.state = S_DONE;
    }
    default: {
      // One step of a search (S_TOPK, S_TOPP, S_TOPN, S_TIES).
      nx.lo = st.lo + (pick(sums, st.goal) << shift);
      nx.p = st.p + 1u;
      if (nx.p == 8u) {
        if (state == S_TOPK) {
          nx.tk = nx.lo;
          nx.state = select(S_RACE, S_MASS, row.top_p < 1.0);
        } else if (state == S_TOPP) {
          nx.tp = nx.lo;
          nx.state = S_RACE;
        } else if (state == S_TOPN) {
          nx.tn = nx.lo;
          nx.state = S_CNT;
        } else {
          nx.ti = nx.lo;
          nx.state = S_RANK;
        }
        nx.lo = 0u;
        nx.p = 0u;
      }
    }
  }
  states[r] = nx;
}

@compute @workgroup_size(WG)
fn emit(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  lid = li;
  let r = wid.x;
  let row = rows[r];
  let base = r * OUT_WORDS;
  let st = load_state(r);
  if ((row.flags & F_LOGPROBS) == 0u) {
    if (lid == 0u) {
      out[base] = st.token;
      out[base + 3u] = 0u;
    }
    return;
  }
  for (var i = lid; i < g.vocab && st.n > 0u; i += WG) {
    let y = src_y(r, row, i);
    let k = fkey(y);
    if (k > st.tn || (k == st.tn && ~i >= st.ti)) {
      let slot = atomicAdd(&gather_n, 1u);
      if (slot < GATHER) {
        gather_i[slot] = i;
        gather_v[slot] = y;
      }
    }
  }
  workgroupBarrier();
  if (lid != 0u) {
    return;
  }
  let got = min(atomicLoad(&gather_n), min(st.n, GATHER));
  // Insertion sort: logprob descending, token ascending on ties.
  for (var a = 1u; a < got; a++) {
    let vi = gather_i[a];
    let vv = gather_v[a];
    var c = a;
    while (c > 0u && (gather_v[c - 1u] < vv || (gather_v[c - 1u] == vv && gather_i[c - 1u] > vi))) {
      gather_i[c] = gather_i[c - 1u];
      gather_v[c] = gather_v[c - 1u];
      c--;
    }
    gather_i[c] = vi;
    gather_v[c] = vv;
  }
  out[base] = st.token;
  out[base + 1u] = bitcast<u32>(st.y_tok - st.lse);
  out[base + 2u] = u32(st.rank);
  out[base + 3u] = got;
  for (var j = 0u; j < got; j++) {
    out[base + 4u + j] = gather_i[j];
    out[base + 24u + j] = bitcast<u32>(gather_v[j] - st.lse);
  }
}

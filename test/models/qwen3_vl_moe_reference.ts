// CPU reference forward of the Qwen3-VL-MoE text model, written from transformers' modeling_qwen3_vl_moe.py:
// activations in f64, weights dequantized to f32 from the loader's IR (so bf16, NVFP4 and FP8 checkpoints all go
// through the same code the GPU path will read). Slow and simple on purpose: it pins down the math and the
// formats before any GPU code, and the GPU model tests compare against it where no golden file covers a case.
import { dequantize } from '../../loader/dequant.js';
import { loadHostWeights } from '../../loader/materialize.js';
import { readQwen3VlMoeConfig, type Qwen3VlMoeTextConfig } from '../../models/qwen3_vl_moe/config.js';
import { isMoeLayer, textPrefix } from '../../models/qwen3_vl_moe/params.js';
import { qwen3VlMoeWeightSpec } from '../../models/qwen3_vl_moe/weights.js';

type Mlp =
  | { kind: 'moe'; router: Float32Array; gateUp: Float32Array; down: Float32Array }
  | { kind: 'dense'; gate: Float32Array; up: Float32Array; down: Float32Array };

export interface RefLayer {
  inputNorm: Float32Array;
  postAttnNorm: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  qNorm: Float32Array;
  kNorm: Float32Array;
  mlp: Mlp;
}

export interface RefWeights {
  cfg: Qwen3VlMoeTextConfig;
  embed: Float32Array;
  layers: RefLayer[];
  norm: Float32Array;
  lmHead: Float32Array;
}

/** Reads a checkpoint directory through the loader (rules, IR) and dequantizes every text weight to f32. */
export async function loadReferenceWeights(dir: string): Promise<RefWeights> {
  const config = await readQwen3VlMoeConfig(dir);
  const cfg = config.text;
  const { weights } = await loadHostWeights(dir, qwen3VlMoeWeightSpec(config));
  const get = (name: string): Float32Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: parameter ${name} was not loaded`);
    return dequantize(t);
  };
  const layers: RefLayer[] = [];
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `${textPrefix}.layers.${l}`;
    const mlp: Mlp = isMoeLayer(cfg, l)
      ? {
          kind: 'moe',
          router: get(`${p}.mlp.gate.weight`),
          gateUp: get(`${p}.mlp.experts.gate_up_proj`),
          down: get(`${p}.mlp.experts.down_proj`),
        }
      : {
          kind: 'dense',
          gate: get(`${p}.mlp.gate_proj.weight`),
          up: get(`${p}.mlp.up_proj.weight`),
          down: get(`${p}.mlp.down_proj.weight`),
        };
    layers.push({
      inputNorm: get(`${p}.input_layernorm.weight`),
      postAttnNorm: get(`${p}.post_attention_layernorm.weight`),
      q: get(`${p}.self_attn.q_proj.weight`),
      k: get(`${p}.self_attn.k_proj.weight`),
      v: get(`${p}.self_attn.v_proj.weight`),
      o: get(`${p}.self_attn.o_proj.weight`),
      qNorm: get(`${p}.self_attn.q_norm.weight`),
      kNorm: get(`${p}.self_attn.k_norm.weight`),
      mlp,
    });
  }
  const embed = get(`${textPrefix}.embed_tokens.weight`);
  return {
    cfg,
    embed,
    layers,
    norm: get(`${textPrefix}.norm.weight`),
    lmHead: cfg.tieWordEmbeddings ? embed : get('lm_head.weight'),
  };
}

/** y[n] = Σ_k x[k] · W[n, k] for W [N, K] stored row-major at `wOffset` (expert slices share one array). */
function linear(x: Float64Array, w: Float32Array, n: number, k: number, wOffset = 0): Float64Array {
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const base = wOffset + r * k;
    let s = 0;
    for (let c = 0; c < k; c++) s += x[c] * w[base + c];
    y[r] = s;
  }
  return y;
}

/** transformers' RMSNorm: x / sqrt(mean(x²) + eps), then weight · x (not 1 + weight). */
function rmsNorm(x: Float64Array, w: Float32Array, eps: number, offset = 0, len = w.length): void {
  let ss = 0;
  for (let i = 0; i < len; i++) ss += x[offset + i] ** 2;
  const inv = 1 / Math.sqrt(ss / len + eps);
  for (let i = 0; i < len; i++) x[offset + i] = x[offset + i] * inv * w[i];
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Rotation angles per token: for frequency j, interleaved M-RoPE takes the h position when j % 3 == 1 and
 * j < 3·s_h, the w position when j % 3 == 2 and j < 3·s_w, else t. inv_freq and the angle are rounded to f32 as
 * transformers computes them (it forces float32 there), which matters only at long positions.
 */
export function mropeAngles(cfg: Qwen3VlMoeTextConfig, pos: [number, number, number]): Float64Array {
  const half = cfg.headDim / 2;
  const [, sh, sw] = cfg.mropeSection;
  const out = new Float64Array(half);
  for (let j = 0; j < half; j++) {
    const exponent = Math.fround(Math.fround(2 * j) / cfg.headDim);
    const invFreq = Math.fround(1 / Math.fround(cfg.ropeTheta ** exponent));
    let axis = 0;
    if (cfg.mropeInterleaved) {
      if (j % 3 === 1 && j < 3 * sh) axis = 1;
      else if (j % 3 === 2 && j < 3 * sw) axis = 2;
    } else {
      // Chunked layout [t…, h…, w…] (Qwen2-VL); kept for configs with mrope_interleaved false.
      if (j >= cfg.mropeSection[0] + sh) axis = 2;
      else if (j >= cfg.mropeSection[0]) axis = 1;
    }
    out[j] = Math.fround(invFreq * pos[axis]);
  }
  return out;
}

/** In place on one head at `off`: x·cos + rotate_half(x)·sin with rotate_half pairing (i, i + head_dim/2). */
function applyRope(x: Float64Array, off: number, angles: Float64Array): void {
  const half = angles.length;
  for (let j = 0; j < half; j++) {
    const c = Math.cos(angles[j]);
    const s = Math.sin(angles[j]);
    const a = x[off + j];
    const b = x[off + j + half];
    x[off + j] = a * c - b * s;
    x[off + j + half] = b * c + a * s;
  }
}

/** Text-only positions: t = h = w = index (+ start). */
export function textPositions(count: number, start = 0): [number, number, number][] {
  return Array.from({ length: count }, (_, i) => [start + i, start + i, start + i]);
}

export interface RefOutput {
  /** Residual stream after each decoder layer, [T·H] each. */
  layerOutputs: Float64Array[];
  /** Embeddings [T·H]. */
  embeddings: Float64Array;
  /** After the final RMSNorm [T·H]. */
  finalHidden: Float64Array;
  /** [T·V]. */
  logits: Float64Array;
}

/** The HF `output_hidden_states` tuple: embeddings, outputs of layers 0..L-2, then the last layer's after the norm. */
export function hfHiddenStates(out: RefOutput): Float64Array[] {
  return [out.embeddings, ...out.layerOutputs.slice(0, -1), out.finalHidden];
}

/**
 * Vision features injected at image-token rows, as transformers' Qwen3-VL does: the rows' embeddings are replaced
 * by `embeds` [rows.length, H], and after decoder layer l < deepstack.length, deepstack[l] [rows.length, H] is added
 * to those rows of the residual stream.
 */
export interface RefVisual {
  rows: readonly number[];
  embeds: Float32Array;
  deepstack: readonly Float32Array[];
}

/** One full forward over a prompt (no cache: attention recomputes every position, which is fine at this size). */
export function referenceForward(
  w: RefWeights,
  tokens: readonly number[],
  positions: readonly [number, number, number][] = textPositions(tokens.length),
  onRoute?: (layer: number, token: number, probs: number[]) => void,
  visual?: RefVisual,
): RefOutput {
  const c = w.cfg;
  const T = tokens.length;
  const H = c.hiddenSize;
  const D = c.headDim;
  const nq = c.numAttentionHeads;
  const nkv = c.numKeyValueHeads;
  const group = nq / nkv;
  const scale = 1 / Math.sqrt(D);
  const h = new Float64Array(T * H);
  tokens.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`reference: token ${id} out of range`);
    for (let i = 0; i < H; i++) h[t * H + i] = w.embed[id * H + i];
  });
  visual?.rows.forEach((t, i) => {
    for (let j = 0; j < H; j++) h[t * H + j] = visual.embeds[i * H + j];
  });
  const embeddings = h.slice();
  const angles = positions.map((p) => mropeAngles(c, p));
  const layerOutputs: Float64Array[] = [];
  for (const [l, L] of w.layers.entries()) {
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const x = h.slice(t * H, (t + 1) * H);
      rmsNorm(x, L.inputNorm, c.rmsNormEps);
      const q = linear(x, L.q, nq * D, H);
      const k = linear(x, L.k, nkv * D, H);
      for (let hd = 0; hd < nq; hd++) {
        rmsNorm(q, L.qNorm, c.rmsNormEps, hd * D, D);
        applyRope(q, hd * D, angles[t]);
      }
      for (let hd = 0; hd < nkv; hd++) {
        rmsNorm(k, L.kNorm, c.rmsNormEps, hd * D, D);
        applyRope(k, hd * D, angles[t]);
      }
      qs.push(q);
      ks.push(k);
      vs.push(linear(x, L.v, nkv * D, H));
    }
    for (let t = 0; t < T; t++) {
      const attn = new Float64Array(nq * D);
      for (let hd = 0; hd < nq; hd++) {
        const kvh = Math.floor(hd / group);
        const scores = new Float64Array(t + 1);
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qs[t][hd * D + d] * ks[s][kvh * D + d];
          scores[s] = dot * scale;
          max = Math.max(max, scores[s]);
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += scores[s] = Math.exp(scores[s] - max);
        for (let s = 0; s <= t; s++) {
          const p = scores[s] / sum;
          for (let d = 0; d < D; d++) attn[hd * D + d] += p * vs[s][kvh * D + d];
        }
      }
      const o = linear(attn, L.o, H, nq * D);
      for (let i = 0; i < H; i++) h[t * H + i] += o[i];
    }
    for (let t = 0; t < T; t++) {
      const x = h.slice(t * H, (t + 1) * H);
      rmsNorm(x, L.postAttnNorm, c.rmsNormEps);
      const y = L.mlp.kind === 'moe' ? moe(c, L.mlp, x, (p) => onRoute?.(l, t, p)) : denseMlp(c, L.mlp, x);
      for (let i = 0; i < H; i++) h[t * H + i] += y[i];
    }
    const ds = visual?.deepstack[l];
    if (ds)
      visual.rows.forEach((t, i) => {
        for (let j = 0; j < H; j++) h[t * H + j] += ds[i * H + j];
      });
    layerOutputs.push(h.slice());
  }
  const finalHidden = h.slice();
  for (let t = 0; t < T; t++) rmsNorm(finalHidden, w.norm, c.rmsNormEps, t * H, H);
  const logits = new Float64Array(T * c.vocabSize);
  for (let t = 0; t < T; t++)
    logits.set(linear(finalHidden.subarray(t * H, (t + 1) * H), w.lmHead, c.vocabSize, H), t * c.vocabSize);
  return { layerOutputs, embeddings, finalHidden, logits };
}

/** Router softmax over all experts, top-k (ties to the lower index, as torch.topk), optional renormalization. */
export function routeTopK(
  logits: Float64Array,
  k: number,
  renormalize: boolean,
): { experts: number[]; weights: number[]; probs: number[] } {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const probs = exps.map((v) => v / sum);
  const order = probs.map((p, e) => ({ p, e })).sort((a, b) => b.p - a.p || a.e - b.e);
  const top = order.slice(0, k);
  const norm = renormalize ? top.reduce((a, b) => a + b.p, 0) : 1;
  return { experts: top.map((x) => x.e), weights: top.map((x) => x.p / norm), probs };
}

function moe(
  c: Qwen3VlMoeTextConfig,
  m: Extract<Mlp, { kind: 'moe' }>,
  x: Float64Array,
  onRoute: (probs: number[]) => void,
): Float64Array {
  const H = c.hiddenSize;
  const I = c.moeIntermediateSize;
  const route = routeTopK(linear(x, m.router, c.numExperts, H), c.numExpertsPerTok, c.normTopkProb);
  onRoute(route.probs);
  const { experts, weights } = route;
  const out = new Float64Array(H);
  experts.forEach((e, i) => {
    // gate_up [E, 2I, H]: rows 0..I-1 gate, I..2I-1 up; down [E, H, I].
    const gu = linear(x, m.gateUp, 2 * I, H, e * 2 * I * H);
    const act = new Float64Array(I);
    for (let j = 0; j < I; j++) act[j] = silu(gu[j]) * gu[I + j];
    const y = linear(act, m.down, H, I, e * H * I);
    for (let j = 0; j < H; j++) out[j] += weights[i] * y[j];
  });
  return out;
}

function denseMlp(c: Qwen3VlMoeTextConfig, m: Extract<Mlp, { kind: 'dense' }>, x: Float64Array): Float64Array {
  const I = c.intermediateSize;
  const g = linear(x, m.gate, I, c.hiddenSize);
  const u = linear(x, m.up, I, c.hiddenSize);
  const act = new Float64Array(I);
  for (let j = 0; j < I; j++) act[j] = silu(g[j]) * u[j];
  return linear(act, m.down, c.hiddenSize, I);
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy continuation: text positions continue from the prompt's last position + 1. */
export function referenceGreedy(w: RefWeights, prompt: readonly number[], count: number): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  const V = w.cfg.vocabSize;
  for (let i = 0; i < count; i++) {
    const { logits } = referenceForward(w, seq);
    const next = argmax(logits.subarray((seq.length - 1) * V, seq.length * V));
    out.push(next);
    seq.push(next);
  }
  return out;
}

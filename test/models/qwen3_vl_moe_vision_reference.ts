// CPU reference of the Qwen3-VL vision tower, written from transformers' modeling_qwen3_vl.py (Qwen3VLVisionModel):
// activations in f64, weights as f32 from the loader's IR. Each step is a literal translation of the torch code,
// including its f32 rounding of rotary frequencies, so the GPU encoder has an independent target.
//   patch_embed (Conv3d with stride = kernel: one matmul over the [C·T·P·P] rows) + bias
//   + pos_embed bilinearly interpolated (corner-aligned linspace over the √N grid), in 2×2 merge-block order
//   blocks: x += proj(attn(rope(qkv(LN1(x))))) within each frame; x += fc2(gelu_tanh(fc1(LN2(x))))
//   after block deepstack_visual_indexes[i]: deepstack_merger_list[i] (LayerNorm over the grouped 4·D vector)
//   merger: LayerNorm over D per patch, group 4 consecutive rows → fc1 → exact GELU → fc2
import { fromBf16Array, toBf16Array } from '../../core/float16.js';
import { dequantize } from '../../loader/dequant.js';
import { decodeFloats } from '../../loader/float_formats.js';
import { loadHostWeights } from '../../loader/materialize.js';
import { SafetensorsFile } from '../../loader/safetensors_file.js';
import { type Qwen3VlMoeVisionConfig, readQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { visionPrefix } from '../../models/qwen3_vl_moe/params.js';
import type { VisionFeatures } from '../../models/qwen3_vl_moe/vision_encoder.js';
import { qwen3VlMoeWeightSpec } from '../../models/qwen3_vl_moe/weights.js';
import { randomArray } from '../helpers/compare.js';

export interface RefLinear {
  /** [n, k] row-major. */
  w: Float32Array;
  b: Float32Array;
  n: number;
  k: number;
}

export interface RefLayerNorm {
  w: Float32Array;
  b: Float32Array;
}

export interface RefVisionBlock {
  norm1: RefLayerNorm;
  norm2: RefLayerNorm;
  qkv: RefLinear;
  proj: RefLinear;
  fc1: RefLinear;
  fc2: RefLinear;
}

export interface RefMerger {
  norm: RefLayerNorm;
  fc1: RefLinear;
  fc2: RefLinear;
}

export interface RefVisionWeights {
  cfg: Qwen3VlMoeVisionConfig;
  /** Conv3d weight viewed as [D, C·T·P·P] (the same flattening as a pixel_values row) and its bias. */
  patch: RefLinear;
  /** [numPositionEmbeddings, D]. */
  posEmbed: Float32Array;
  blocks: RefVisionBlock[];
  merger: RefMerger;
  /** One per deepstack_visual_indexes entry. */
  deepstack: RefMerger[];
}

const layerNormEps = 1e-6;

/** Reads the vision tower of a checkpoint directory through the loader (rules, IR) as f32. */
export async function loadReferenceVisionWeights(dir: string): Promise<RefVisionWeights> {
  const config = await readQwen3VlMoeConfig(dir);
  const { weights } = await loadHostWeights(dir, qwen3VlMoeWeightSpec(config));
  return refVisionWeightsFrom(config.vision, (name) => {
    const t = weights.get(`${visionPrefix}.${name}`);
    if (!t) throw new Error(`vision reference: parameter ${visionPrefix}.${name} was not loaded`);
    return dequantize(t);
  });
}

/**
 * Weights by role from tensors named as the checkpoint's, relative to `model.visual.`, each asked for with its shape
 * (checked here).
 */
export function refVisionWeightsFrom(
  cfg: Qwen3VlMoeVisionConfig,
  get: (name: string, shape: readonly number[]) => Float32Array,
): RefVisionWeights {
  const D = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const M = D * cfg.spatialMergeSize ** 2;
  const tensor = (name: string, shape: number[]) => {
    const t = get(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.length !== n) throw new Error(`vision reference: ${name} has ${t.length} values, expected [${shape}]`);
    return t;
  };
  const linear = (m: string, n: number, k: number): RefLinear => ({
    w: tensor(`${m}.weight`, [n, k]),
    b: tensor(`${m}.bias`, [n]),
    n,
    k,
  });
  const norm = (m: string, n: number): RefLayerNorm => ({ w: tensor(`${m}.weight`, [n]), b: tensor(`${m}.bias`, [n]) });
  const merger = (p: string, normCols: number): RefMerger => ({
    norm: norm(`${p}.norm`, normCols),
    fc1: linear(`${p}.linear_fc1`, M, M),
    fc2: linear(`${p}.linear_fc2`, cfg.outHiddenSize, M),
  });
  const patchK = cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize ** 2;
  return {
    cfg,
    patch: {
      w: tensor('patch_embed.proj.weight', [D, patchK]),
      b: tensor('patch_embed.proj.bias', [D]),
      n: D,
      k: patchK,
    },
    posEmbed: tensor('pos_embed.weight', [cfg.numPositionEmbeddings, D]),
    blocks: Array.from({ length: cfg.depth }, (_, b) => ({
      norm1: norm(`blocks.${b}.norm1`, D),
      norm2: norm(`blocks.${b}.norm2`, D),
      qkv: linear(`blocks.${b}.attn.qkv`, 3 * D, D),
      proj: linear(`blocks.${b}.attn.proj`, D, D),
      fc1: linear(`blocks.${b}.mlp.linear_fc1`, I, D),
      fc2: linear(`blocks.${b}.mlp.linear_fc2`, D, I),
    })),
    merger: merger('merger', D),
    deepstack: cfg.deepstackVisualIndexes.map((_, i) => merger(`deepstack_merger_list.${i}`, M)),
  };
}

/**
 * Random vision tensors for a config, named relative to `model.visual.` and spread like the tiny fixture's (norm
 * weights around 1, biases 0.05, matrices 1/√fan_in, pos_embed 0.5), rounded to bf16 so a GPU upload holds the
 * same values.
 */
export function randomVisionTensors(cfg: Qwen3VlMoeVisionConfig, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let next = seed;
  refVisionWeightsFrom(cfg, (name, shape) => {
    const len = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.includes('norm') && name.endsWith('weight');
    let a: Float32Array;
    if (shape.length === 1) {
      a = randomArray(len, next++, isNorm ? 0.25 : 0.05);
      if (isNorm) for (let i = 0; i < len; i++) a[i] += 1;
    } else a = randomArray(len, next++, name === 'pos_embed.weight' ? 0.5 : 1 / Math.sqrt(shape[1]));
    const t = fromBf16Array(toBf16Array(a));
    out.set(name, t);
    return t;
  });
  return out;
}

/** pixel_values [N, C·T·P·P] f32 and image_grid_thw (I64) of the processed fixture image. */
export async function readProcessedImage(path: string) {
  const file = await SafetensorsFile.open(path);
  try {
    const pv = file.entry('pixel_values');
    const pixelValues = decodeFloats(await file.read(pv), pv.dtype, 'pixel_values');
    const g = file.entry('image_grid_thw');
    const bytes = await file.read(g);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const gridThw = [0, 1, 2].map((i) => Number(view.getBigInt64(i * 8, true))) as [number, number, number];
    return { pixelValues, gridThw };
  } finally {
    await file.close();
  }
}

/** y = W·x + b for one row x (length k) read at xOff. */
function linear(L: RefLinear, x: ArrayLike<number>, xOff = 0): Float64Array {
  const y = new Float64Array(L.n);
  for (let r = 0; r < L.n; r++) {
    const base = r * L.k;
    let s = L.b[r];
    for (let c = 0; c < L.k; c++) s += x[xOff + c] * L.w[base + c];
    y[r] = s;
  }
  return y;
}

/** torch.nn.LayerNorm (biased variance, eps 1e-6) over `len` values at `off`, returned as a new array. */
function layerNorm(x: ArrayLike<number>, off: number, len: number, n: RefLayerNorm): Float64Array {
  let mean = 0;
  for (let i = 0; i < len; i++) mean += x[off + i];
  mean /= len;
  let v = 0;
  for (let i = 0; i < len; i++) v += (x[off + i] - mean) ** 2;
  const inv = 1 / Math.sqrt(v / len + layerNormEps);
  const y = new Float64Array(len);
  for (let i = 0; i < len; i++) y[i] = (x[off + i] - mean) * inv * n.w[i] + n.b[i];
  return y;
}

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** erf to f64 precision: its Maclaurin series for |x| < 3, the erfc continued fraction above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * (2 / Math.sqrt(Math.PI));
  }
  // erfc(a) = exp(-a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), evaluated from the tail.
  let f = a;
  for (let n = 80; n >= 1; n--) f = a + n / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const geluExact = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** Row and column (in patches) of every token of one frame, in 2×2 (merge×merge) block order. */
export function blockOrderCoords(h: number, w: number, merge: number): { row: number[]; col: number[] } {
  const row: number[] = [];
  const col: number[] = [];
  for (let br = 0; br < h / merge; br++)
    for (let bc = 0; bc < w / merge; bc++)
      for (let ir = 0; ir < merge; ir++)
        for (let ic = 0; ic < merge; ic++) {
          row.push(br * merge + ir);
          col.push(bc * merge + ic);
        }
  return { row, col };
}

/** torch.linspace(0, end, steps)[i] (f32, as transformers builds it). */
function linspace(end: number, steps: number, i: number): number {
  return steps === 1 ? 0 : Math.fround((i * end) / (steps - 1));
}

/** One merger: optional LayerNorm before grouping (final merger) or after it (deepstack), fc1, GELU, fc2. */
function merge(
  m: RefMerger,
  x: Float64Array,
  tokens: number,
  D: number,
  unit: number,
  postShuffle: boolean,
): Float32Array {
  const M = D * unit;
  const groups = tokens / unit;
  const out = new Float32Array(groups * m.fc2.n);
  for (let g = 0; g < groups; g++) {
    let v: Float64Array;
    if (postShuffle) v = layerNorm(x, g * M, M, m.norm);
    else {
      v = new Float64Array(M);
      for (let u = 0; u < unit; u++) v.set(layerNorm(x, (g * unit + u) * D, D, m.norm), u * D);
    }
    const a = linear(m.fc1, v).map(geluExact);
    out.set(linear(m.fc2, a), g * m.fc2.n);
  }
  return out;
}

/**
 * The vision tower on one image (or video: t frames, each its own attention segment). pixelValues [t·h·w, C·T·P·P]
 * in merge-block order, as the processor emits them; gridThw in patches. Returns the merged features and one
 * deepstack feature per deepstack index, each [t·h·w / merge², outHidden].
 */
export function referenceVision(
  w: RefVisionWeights,
  pixelValues: Float32Array,
  gridThw: [number, number, number],
): VisionFeatures {
  const c = w.cfg;
  const [t, h, wd] = gridThw;
  const ms = c.spatialMergeSize;
  const D = c.hiddenSize;
  const nh = c.numHeads;
  const hd = D / nh;
  const N = t * h * wd;
  const K = w.patch.k;
  if (h % ms || wd % ms) throw new Error(`vision reference: grid ${h}×${wd} is not a multiple of ${ms}`);
  if (pixelValues.length !== N * K) throw new Error(`vision reference: pixel_values ${pixelValues.length} ≠ ${N}×${K}`);
  const { row, col } = blockOrderCoords(h, wd, ms);
  const frame = h * wd;

  // Patch embedding and interpolated position embeddings.
  const side = Math.round(Math.sqrt(c.numPositionEmbeddings));
  const x = new Float64Array(N * D);
  for (let i = 0; i < N; i++) {
    x.set(linear(w.patch, pixelValues, i * K), i * D);
    const fh = linspace(side - 1, h, row[i % frame]);
    const fw = linspace(side - 1, wd, col[i % frame]);
    const h0 = Math.trunc(fh);
    const w0 = Math.trunc(fw);
    const h1 = Math.min(h0 + 1, side - 1);
    const w1 = Math.min(w0 + 1, side - 1);
    const dh = fh - h0;
    const dw = fw - w0;
    const corners: [number, number][] = [
      [h0 * side + w0, (1 - dh) * (1 - dw)],
      [h0 * side + w1, (1 - dh) * dw],
      [h1 * side + w0, dh * (1 - dw)],
      [h1 * side + w1, dh * dw],
    ];
    for (const [idx, wt] of corners) for (let j = 0; j < D; j++) x[i * D + j] += wt * w.posEmbed[idx * D + j];
  }

  // 2-D rotary angles: the first hd/4 frequencies rotate by the row, the next hd/4 by the column (f32 as torch).
  const quarter = hd / 4;
  const invFreq = Array.from({ length: quarter }, (_, i) =>
    Math.fround(1 / Math.fround(10000 ** Math.fround((2 * i) / (hd / 2)))),
  );
  const cos = new Float64Array(N * (hd / 2));
  const sin = new Float64Array(N * (hd / 2));
  for (let i = 0; i < N; i++)
    for (let j = 0; j < hd / 2; j++) {
      const pos = j < quarter ? row[i % frame] : col[i % frame];
      const a = Math.fround(pos * invFreq[j % quarter]);
      cos[i * (hd / 2) + j] = Math.cos(a);
      sin[i * (hd / 2) + j] = Math.sin(a);
    }
  const rope = (v: Float64Array, off: number, i: number) => {
    for (let j = 0; j < hd / 2; j++) {
      const cs = cos[i * (hd / 2) + j];
      const sn = sin[i * (hd / 2) + j];
      const a = v[off + j];
      const b = v[off + j + hd / 2];
      v[off + j] = a * cs - b * sn;
      v[off + j + hd / 2] = b * cs + a * sn;
    }
  };

  const scale = 1 / Math.sqrt(hd);
  const deepstack: Float32Array[] = [];
  for (const [bi, B] of w.blocks.entries()) {
    // qkv rows: [q heads | k heads | v heads], each head hd wide.
    const qkv: Float64Array[] = [];
    for (let i = 0; i < N; i++) {
      const y = linear(B.qkv, layerNorm(x, i * D, D, B.norm1));
      for (let hh = 0; hh < nh; hh++) {
        rope(y, hh * hd, i);
        rope(y, D + hh * hd, i);
      }
      qkv.push(y);
    }
    // Full (non-causal) attention within each frame: cu_seqlens = cumsum of h·w repeated t times.
    for (let f = 0; f < t; f++) {
      const s0 = f * frame;
      for (let i = s0; i < s0 + frame; i++) {
        const attn = new Float64Array(D);
        for (let hh = 0; hh < nh; hh++) {
          const scores = new Float64Array(frame);
          let max = -Infinity;
          for (let s = 0; s < frame; s++) {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += qkv[i][hh * hd + d] * qkv[s0 + s][D + hh * hd + d];
            scores[s] = dot * scale;
            max = Math.max(max, scores[s]);
          }
          let sum = 0;
          for (let s = 0; s < frame; s++) sum += scores[s] = Math.exp(scores[s] - max);
          for (let s = 0; s < frame; s++) {
            const p = scores[s] / sum;
            for (let d = 0; d < hd; d++) attn[hh * hd + d] += p * qkv[s0 + s][2 * D + hh * hd + d];
          }
        }
        const o = linear(B.proj, attn);
        for (let j = 0; j < D; j++) x[i * D + j] += o[j];
      }
    }
    for (let i = 0; i < N; i++) {
      const a = linear(B.fc1, layerNorm(x, i * D, D, B.norm2)).map(geluTanh);
      const y = linear(B.fc2, a);
      for (let j = 0; j < D; j++) x[i * D + j] += y[j];
    }
    const di = c.deepstackVisualIndexes.indexOf(bi);
    if (di >= 0) deepstack[di] = merge(w.deepstack[di], x, N, D, ms * ms, true);
  }
  return { embeds: merge(w.merger, x, N, D, ms * ms, false), deepstack };
}

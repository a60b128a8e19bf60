// Every tensor of a ModelOpt NVFP4 Qwen3-VL-MoE checkpoint, with how its random bytes are made. Names and shapes
// come from the model's own parameter list (models/qwen3_vl_moe/params.ts), spelled as ModelOpt exports them:
// attention linears as `<m>.weight` (U8 E2M1 pairs) + `.weight_scale` (E4M3 per 16) + `.weight_scale_2` and
// `.input_scale` (F32 scalars); experts one module per projection and index (`mlp.experts.gate_proj.7.weight`);
// router, lm_head, embeddings, norms and the vision tower in BF16.
//
// Magnitudes keep activations finite through any depth: a BF16 linear is uniform with std 1/sqrt(K) and an NVFP4
// one gets the global scale that makes K·E[w²] = 1 for its random codes and block scales, so each projection of a
// unit-variance input has unit variance (router and lm_head logits ~N(0, 1): spread routing, no overflow); norm
// weights lie in [0.8, 1.2], so RMSNorm outputs stay near unit RMS and the residual stream grows slowly.
import { parseQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { qwen3VlMoeParams } from '../../models/qwen3_vl_moe/params.js';
import { configJson } from './config_files.js';
import { Xoshiro128 } from './rng.js';
import type { SynthSpec } from './spec.js';

export type TensorDtype = 'BF16' | 'F32' | 'U8' | 'F8_E4M3';

/** How a tensor's bytes are made: uniform BF16 values, random E2M1 code pairs, E4M3 block scales, or one f32. */
export type TensorFill =
  | { kind: 'uniform'; mean: number; halfWidth: number }
  | { kind: 'fp4Codes' }
  | { kind: 'blockScales' }
  | { kind: 'scalar'; value: number };

export interface PlannedTensor {
  name: string;
  dtype: TensorDtype;
  shape: number[];
  bytes: number;
  fill: TensorFill;
}

const bytesPer: Record<TensorDtype, number> = { BF16: 2, F32: 4, U8: 1, F8_E4M3: 1 };

/** Block-scale codes: E4M3 0x70 … 0x7e = 128 … 448, the upper range ModelOpt's amax/6 scaling fills. */
export const BLOCK_SCALE_MIN_CODE = 0x70;
export const BLOCK_SCALE_MAX_CODE = 0x7e;

export function e4m3Value(code: number): number {
  const e = (code >> 3) & 0xf;
  const m = code & 7;
  const v = e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7);
  return code & 0x80 ? -v : v;
}

/** E[code²] of a uniformly random E2M1 nibble: values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}. */
export const E2M1_MEAN_SQUARE = (0 + 0.25 + 1 + 2.25 + 4 + 9 + 16 + 36) / 8;

function blockScaleMeanSquare(): number {
  let sum = 0;
  for (let c = BLOCK_SCALE_MIN_CODE; c <= BLOCK_SCALE_MAX_CODE; c++) sum += e4m3Value(c) ** 2;
  return sum / (BLOCK_SCALE_MAX_CODE - BLOCK_SCALE_MIN_CODE + 1);
}

/** weight_scale_2 that gives an NVFP4 [N, K] weight of random codes and block scales E[w²] = 1/K. */
export function nvfp4GlobalScale(k: number): number {
  return 1 / Math.sqrt(k * E2M1_MEAN_SQUARE * blockScaleMeanSquare());
}

/** A ModelOpt input_scale (amax / (6 · 448)) for activations of unit RMS and amax about 4. */
const INPUT_SCALE = 4 / (6 * 448);

const uniformStd = (std: number): TensorFill => ({ kind: 'uniform', mean: 0, halfWidth: std * Math.sqrt(3) });

function tensor(name: string, dtype: TensorDtype, shape: number[], fill: TensorFill): PlannedTensor {
  return { name, dtype, shape, bytes: shape.reduce((a, b) => a * b, 1) * bytesPer[dtype], fill };
}

function nvfp4Module(module: string, n: number, k: number): PlannedTensor[] {
  return [
    tensor(`${module}.weight`, 'U8', [n, k / 2], { kind: 'fp4Codes' }),
    tensor(`${module}.weight_scale`, 'F8_E4M3', [n, k / 16], { kind: 'blockScales' }),
    tensor(`${module}.weight_scale_2`, 'F32', [], { kind: 'scalar', value: nvfp4GlobalScale(k) }),
    tensor(`${module}.input_scale`, 'F32', [], { kind: 'scalar', value: INPUT_SCALE }),
  ];
}

/** Norm weights near 1, biases near 0, embeddings of unit std, other dense tensors (patch/pos embeds) 1/sqrt(fan-in). */
function denseFill(name: string, shape: number[]): TensorFill {
  if (name.endsWith('.bias')) return { kind: 'uniform', mean: 0, halfWidth: 0.02 };
  if (/norm[12]?\.weight$|layernorm\.weight$|_norm\.weight$/.test(name))
    return { kind: 'uniform', mean: 1, halfWidth: 0.2 };
  if (name.endsWith('embed_tokens.weight') || name.endsWith('pos_embed.weight')) return uniformStd(1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return uniformStd(1 / Math.sqrt(fanIn));
}

/** Every tensor of the checkpoint `spec` describes, in file order (text layer by layer, then vision). */
export function planTensors(spec: SynthSpec): PlannedTensor[] {
  const config = parseQwen3VlMoeConfig(configJson(spec), 'synthetic config');
  const out: PlannedTensor[] = [];
  for (const p of qwen3VlMoeParams(config)) {
    if (p.kind === 'dense') out.push(tensor(p.name, 'BF16', p.shape, denseFill(p.name, p.shape)));
    else if (p.kind === 'linear') {
      const [n, k] = p.shape;
      if (p.isQuantizable) out.push(...nvfp4Module(p.name.replace(/\.weight$/, ''), n, k));
      else out.push(tensor(p.name, 'BF16', p.shape, uniformStd(1 / Math.sqrt(k))));
    } else {
      // experts [E, N, K]: one module per projection and expert, projection first (ModelOpt's Qwen3-VL-MoE names)
      const [E, N, K] = p.shape;
      const base = p.name.slice(0, p.name.lastIndexOf('.'));
      const segments = p.segments ?? [{ name: p.name.slice(p.name.lastIndexOf('.') + 1), rows: N }];
      for (const seg of segments) {
        const proj = `${seg.name.replace(/_proj$/, '')}_proj`;
        for (let e = 0; e < E; e++) out.push(...nvfp4Module(`${base}.${proj}.${e}`, seg.rows, K));
      }
    }
  }
  return out;
}

/** FNV-1a of the name: each tensor's PRNG stream depends only on the seed and its name. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Yields the tensor's bytes in chunks of at most `chunkBytes` (a multiple of 4), never holding more. */
export function* tensorChunks(t: PlannedTensor, seed: number, chunkBytes = 8 << 20): Generator<Uint8Array> {
  const rng = new Xoshiro128(nameHash(t.name) ^ Math.imul(seed, 0x9e3779b9));
  if (t.fill.kind === 'scalar') {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, t.fill.value, true);
    yield b;
    return;
  }
  const words = new Uint32Array(chunkBytes / 4);
  for (let done = 0; done < t.bytes; done += chunkBytes) {
    const n = Math.min(chunkBytes, t.bytes - done);
    const w = words.subarray(0, Math.ceil(n / 4));
    fillWords(w, t.fill, rng);
    yield new Uint8Array(w.buffer, 0, n);
  }
}

const tables = new Map<string, Uint16Array>();

function uniformTable(mean: number, halfWidth: number): Uint16Array {
  const key = `${mean}/${halfWidth}`;
  let t = tables.get(key);
  if (!t) {
    const f = new Float32Array(1 << 16);
    const step = (2 * halfWidth) / (1 << 16);
    for (let i = 0; i < f.length; i++) f[i] = mean - halfWidth + (i + 0.5) * step;
    t = new Uint16Array(f.length);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < f.length; i++) t[i] = u[i] >>> 16;
    if (tables.size > 256) tables.clear();
    tables.set(key, t);
  }
  return t;
}

function fillWords(w: Uint32Array, fill: TensorFill, rng: Xoshiro128): void {
  switch (fill.kind) {
    case 'fp4Codes':
      rng.fill(w);
      return;
    case 'blockScales': {
      const span = BLOCK_SCALE_MAX_CODE - BLOCK_SCALE_MIN_CODE + 1;
      for (let i = 0; i < w.length; i++) {
        const r = rng.next();
        let v = 0;
        for (let j = 0; j < 4; j++) v |= (BLOCK_SCALE_MIN_CODE + (((r >>> (8 * j)) & 0xff) % span)) << (8 * j);
        w[i] = v >>> 0;
      }
      return;
    }
    case 'uniform': {
      // Two BF16 values per word, each picked by 16 random bits from a table of 65,536 evenly spaced values in
      // mean ± halfWidth (rounded to BF16 by truncation).
      const table = uniformTable(fill.mean, fill.halfWidth);
      for (let i = 0; i < w.length; i++) {
        const r = rng.next();
        w[i] = (table[r & 0xffff] | (table[r >>> 16] << 16)) >>> 0;
      }
      return;
    }
    case 'scalar':
      throw new Error('scalar tensors are written whole');
  }
}

// Host-side tables the vision tower needs for one image, all in the processor's 2×2 merge-block row order (the
// order of pixel_values rows): each patch's (row, col) on the patch grid for the 2-D rotary embedding, the four
// corners and weights of its bilinearly interpolated position embedding, and the attention segments (one per
// temporal frame, as transformers' cu_seqlens). Mirrors Qwen3VLVisionModel.rot_pos_emb, fast_pos_embed_interpolate
// and the cu_seqlens line of its forward.
import { ModelError } from '../../core/errors.js';
import { visionCuSeqlens } from '../../kernels/vision_attention.js';
import { visionRopePositions } from '../../kernels/vision_rope.js';
import type { Qwen3VlMoeVisionConfig } from './config.js';

export interface VisionLayout {
  /** [t, h, w] in patches. */
  gridThw: [number, number, number];
  /** Patches (rows of pixel_values): t·h·w. */
  numPatches: number;
  /** Merged tokens: numPatches / merge². */
  numTokens: number;
  /** Patches per frame (h·w): the attention segment length. */
  frame: number;
  /** Per patch: row then column on the patch grid (u32 pairs; kernels/vision_rope visionRopePositions). */
  rowCol: Uint32Array;
  /** Per patch: the four pos_embed rows (floor/ceil row × floor/ceil col) ... */
  interpIndex: Uint32Array;
  /** ... and their bilinear weights, 4 per patch. */
  interpWeight: Float32Array;
  /** Segment starts and the end: [0, frame, 2·frame, …, numPatches] (t + 1 entries). */
  cuSeqlens: Uint32Array;
}

function fail(message: string): never {
  throw new ModelError('DAWN_ERR_MODEL_VISION', message);
}

/** torch.linspace(0, end, steps) in f32. */
function linspace(end: number, steps: number): Float32Array {
  return Float32Array.from({ length: steps }, (_, i) => (steps === 1 ? 0 : (i * end) / (steps - 1)));
}

export function visionLayout(cfg: Qwen3VlMoeVisionConfig, gridThw: readonly [number, number, number]): VisionLayout {
  const [t, h, w] = gridThw;
  const m = cfg.spatialMergeSize;
  if (![t, h, w].every((v) => Number.isInteger(v) && v >= 1))
    fail(`image grid [${gridThw.join(', ')}]: expected positive integers [t, h, w]`);
  if (h % m || w % m) fail(`image grid [${gridThw.join(', ')}]: h and w must be multiples of the merge size ${m}`);
  const frame = h * w;
  const numPatches = t * frame;
  const side = Math.round(Math.sqrt(cfg.numPositionEmbeddings));
  const hIdx = linspace(side - 1, h);
  const wIdx = linspace(side - 1, w);
  const rowCol = visionRopePositions([[t, h, w]], m);
  const interpIndex = new Uint32Array(numPatches * 4);
  const interpWeight = new Float32Array(numPatches * 4);
  for (let i = 0; i < numPatches; i++) {
    const row = rowCol[2 * i];
    const col = rowCol[2 * i + 1];
    const h0 = Math.trunc(hIdx[row]);
    const w0 = Math.trunc(wIdx[col]);
    const h1 = Math.min(h0 + 1, side - 1);
    const w1 = Math.min(w0 + 1, side - 1);
    const dh = Math.fround(hIdx[row] - h0);
    const dw = Math.fround(wIdx[col] - w0);
    interpIndex.set([h0 * side + w0, h0 * side + w1, h1 * side + w0, h1 * side + w1], 4 * i);
    interpWeight.set([(1 - dh) * (1 - dw), (1 - dh) * dw, dh * (1 - dw), dh * dw], 4 * i);
  }
  return {
    gridThw: [t, h, w],
    numPatches,
    numTokens: numPatches / (m * m),
    frame,
    rowCol,
    interpIndex,
    interpWeight,
    cuSeqlens: visionCuSeqlens([[t, h, w]]),
  };
}

/**
 * Image-encoding FLOPs (multiply-adds × 2) of the tower on one grid: the linears, attention's QKᵀ and PV within each
 * frame, and the mergers. Norms, activations and rotary are left out (a few percent at most).
 */
export function visionFlops(cfg: Qwen3VlMoeVisionConfig, gridThw: readonly [number, number, number]): number {
  const [t, h, w] = gridThw;
  const N = t * h * w;
  const D = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const M = D * cfg.spatialMergeSize ** 2;
  const tokens = N / cfg.spatialMergeSize ** 2;
  const patchK = cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize ** 2;
  const perBlock = N * (3 * D * D + D * D + 2 * D * I) + 2 * t * (h * w) ** 2 * D;
  const merger = tokens * (M * M + M * cfg.outHiddenSize);
  return 2 * (N * patchK * D + cfg.depth * perBlock + (1 + cfg.deepstackVisualIndexes.length) * merger);
}

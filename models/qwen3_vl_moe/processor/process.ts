// Turns a decoded RGB image into the vision tower's input, as transformers' Qwen2-VL image processor (used by
// Qwen3-VL) does: smart_resize → bicubic (bit-exact uint8, see resize.ts) → (x·rescale − mean) / std → the frame
// repeated temporal_patch_size times → patches of C·T·P·P values in merge-block order.
import { createHash } from 'node:crypto';
import { ImageInputError } from './errors.js';
import { resizeBicubicRgb8 } from './resize.js';
import { smartResize } from './smart_resize.js';
import type { ImageProcessorConfig, ProcessedImage, RgbImage } from './types.js';

/** `where` (e.g. the request's JSON path of the image part) prefixes the 400 errors (aspect ratio, size). */
export function processImage(img: RgbImage, cfg: ImageProcessorConfig, where: string | null = null): ProcessedImage {
  const { width, height, rgb } = img;
  if (rgb.length !== width * height * 3) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_SIZE',
      `${where === null ? '' : `${where}: `}image ${width}x${height} should carry ${width * height * 3} RGB bytes, found ${rgb.length}`,
      where,
    );
  }
  const p = cfg.patchSize;
  const m = cfg.mergeSize;
  const size = smartResize(height, width, p * m, cfg.minPixels, cfg.maxPixels, where);
  const resized = resizeBicubicRgb8(rgb, width, height, size.width, size.height);
  const gridH = size.height / p;
  const gridW = size.width / p;
  const gridThw: [number, number, number] = [1, gridH, gridW];
  const pixelValues = patchify(resized, size.width, gridH, gridW, cfg);
  const numTokens = (gridH * gridW) / (m * m);
  return { pixelValues, gridThw, numTokens, contentHash: contentHash(gridThw, resized, cfg) };
}

/**
 * transformers views the [T, C, H, W] frames as [T, C, H/(P·M), M, P, W/(P·M), M, P] and permutes them to
 * [H/(P·M), W/(P·M), M, M, C, T, P, P]: each row is one patch, rows run through 2x2 merge blocks (block row,
 * block column, then the patch inside the block), and a row holds channel, frame, patch row, patch column.
 */
export function patchify(
  rgb: Uint8Array,
  width: number,
  gridH: number,
  gridW: number,
  cfg: ImageProcessorConfig,
): Float32Array {
  const p = cfg.patchSize;
  const m = cfg.mergeSize;
  const t = cfg.temporalPatchSize;
  const rowLen = 3 * t * p * p;
  const out = new Float32Array(gridH * gridW * rowLen);
  // One lookup per channel and byte value: (x·rescale − mean) / std in f64, stored as f32.
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * cfg.rescaleFactor - cfg.imageMean[c]) / cfg.imageStd[c];
  }
  let row = 0;
  for (let bh = 0; bh < gridH / m; bh++) {
    for (let bw = 0; bw < gridW / m; bw++) {
      for (let mh = 0; mh < m; mh++) {
        for (let mw = 0; mw < m; mw++, row++) {
          const y0 = (bh * m + mh) * p;
          const x0 = (bw * m + mw) * p;
          let o = row * rowLen;
          for (let c = 0; c < 3; c++) {
            const lutC = c * 256;
            const frame = o;
            for (let py = 0; py < p; py++) {
              let src = ((y0 + py) * width + x0) * 3 + c;
              for (let px = 0; px < p; px++, src += 3) out[o++] = lut[lutC + rgb[src]];
            }
            // A still image is its own every frame: copy frame 0 into frames 1..T-1.
            for (let f = 1; f < t; f++, o += p * p) out.copyWithin(o, frame, frame + p * p);
          }
        }
      }
    }
  }
  return out;
}

/**
 * The pixel values are a pure function of the resized bytes and the normalization constants, so hashing those
 * (a quarter of the f32 bytes) names the same content; the grid and patch geometry are included.
 */
function contentHash(gridThw: [number, number, number], resized: Uint8Array, cfg: ImageProcessorConfig): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      grid: gridThw,
      patch: [cfg.patchSize, cfg.temporalPatchSize, cfg.mergeSize],
      norm: [cfg.rescaleFactor, ...cfg.imageMean, ...cfg.imageStd],
    }),
  );
  h.update(resized);
  return h.digest('hex');
}

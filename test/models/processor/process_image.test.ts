// processImage against transformers' own output for the fixture PNG, the merge-block layout against a literal
// reshape/permute of transformers' sequence, and the bicubic resize against an independent f64 reference.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../../loader/safetensors_file.js';
import {
  decodeImage,
  type ImageProcessorConfig,
  processImage,
  readImageProcessorConfig,
} from '../../../models/qwen3_vl_moe/processor/index.js';
import { resizeBicubicRgb8 } from '../../../models/qwen3_vl_moe/processor/resize.js';
import { seededRandom } from '../../helpers/compare.js';
import { findFixture, missingFixtureReason } from '../../helpers/fixtures.js';

const tiny = findFixture('qwen3vlmoe-tiny');

async function readFixture(dir: string): Promise<{ pixelValues: Float32Array; grid: number[] }> {
  const file = await SafetensorsFile.open(join(dir, 'image', 'gradient-100x75.processed.safetensors'));
  try {
    const pv = await file.read(file.entry('pixel_values'));
    const grid = await file.read(file.entry('image_grid_thw'));
    return {
      pixelValues: new Float32Array(pv.buffer, pv.byteOffset, pv.byteLength / 4),
      grid: Array.from(new BigInt64Array(grid.buffer, grid.byteOffset, 3), Number),
    };
  } finally {
    await file.close();
  }
}

describe.skipIf(!tiny)(
  `processImage vs transformers (${tiny ? 'fixture found' : missingFixtureReason('qwen3vlmoe-tiny')})`,
  () => {
    it('reproduces pixel_values and image_grid_thw of the 100x75 PNG bit for bit', async () => {
      const dir = tiny!;
      const ref = await readFixture(dir);
      const cfg = await readImageProcessorConfig(join(dir, 'bf16'));
      const img = await decodeImage(await readFile(join(dir, 'image', 'gradient-100x75.png')), 'fixture png');
      const out = processImage(img, cfg);
      expect(out.gridThw).toEqual(ref.grid);
      expect(out.gridThw).toEqual([1, 4, 6]);
      expect(out.numTokens).toBe(6);
      expect(out.pixelValues.length).toBe(24 * 1536);
      let maxAbs = 0;
      let sumAbs = 0;
      for (let i = 0; i < ref.pixelValues.length; i++) {
        const d = Math.abs(out.pixelValues[i] - ref.pixelValues[i]);
        maxAbs = Math.max(maxAbs, d);
        sumAbs += d;
      }
      // Measured: max 0, mean 0 — the resize is PyTorch's uint8 antialias bicubic, reproduced exactly (resize.ts).
      // With PIL's fixed 22-bit weights instead, 64 of the 18432 resized bytes differ by 1 (0.0078 after normalize).
      expect(maxAbs).toBe(0);
      expect(sumAbs / ref.pixelValues.length).toBe(0);
    });
  },
);

/** The f32 values a config with rescale 1, mean 0, std 1 produces: the resized bytes themselves. */
const identityNorm = (minPixels: number, maxPixels: number): ImageProcessorConfig => ({
  patchSize: 16,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels,
  maxPixels,
  imageMean: [0, 0, 0],
  imageStd: [1, 1, 1],
  rescaleFactor: 1,
});

/** numpy-style transpose of a row-major array: out has shape shape[perm[0]], shape[perm[1]], ... */
function permute(src: Float64Array, shape: number[], perm: number[]): Float64Array {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const outShape = perm.map((p) => shape[p]);
  const out = new Float64Array(src.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let k = 0; k < perm.length; k++) s += idx[k] * strides[perm[k]];
    out[o] = src[s];
    for (let k = outShape.length - 1; k >= 0; k--) {
      if (++idx[k] < outShape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

describe('processImage layout', () => {
  // 96 wide, 64 high: already multiples of 32, so no resize; every byte encodes where it came from.
  const W = 96;
  const H = 64;
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      rgb[(y * W + x) * 3] = x;
      rgb[(y * W + x) * 3 + 1] = y;
      rgb[(y * W + x) * 3 + 2] = 200 + ((x + y) % 50);
    }
  }
  const cfg = identityNorm(1024, 1 << 30);
  const out = processImage({ width: W, height: H, rgb }, cfg);

  it('has the grid, token count and shape of transformers', () => {
    expect(out.gridThw).toEqual([1, 4, 6]);
    expect(out.numTokens).toBe(6);
    expect(out.pixelValues.length).toBe(24 * 3 * 2 * 16 * 16);
  });

  it("equals transformers' reshape [T,C,H/32,2,16,W/32,2,16] → permute (0,3,6,4,7,2,1,5,8)", () => {
    // The frames [T=2, C, H, W], the image repeated, then transformers' view and permute, written literally.
    const chw = new Float64Array(2 * 3 * H * W);
    for (let t = 0; t < 2; t++) {
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < H * W; i++) chw[(t * 3 + c) * H * W + i] = rgb[i * 3 + c];
      }
    }
    expect(Array.from(out.pixelValues)).toEqual(Array.from(permuteTransformers(chw)));
  });

  it('runs rows through 2x2 merge blocks: row 1 is the patch right of row 0, row 2 the one below', () => {
    const rowLen = 1536;
    const at = (row: number, c: number, t: number, py: number, px: number) =>
      out.pixelValues[row * rowLen + ((c * 2 + t) * 16 + py) * 16 + px];
    expect([at(0, 0, 0, 0, 0), at(0, 1, 0, 0, 0)]).toEqual([0, 0]); // x 0, y 0
    expect([at(1, 0, 0, 0, 0), at(1, 1, 0, 0, 0)]).toEqual([16, 0]); // patch (0, 1)
    expect([at(2, 0, 0, 0, 0), at(2, 1, 0, 0, 0)]).toEqual([0, 16]); // patch (1, 0)
    expect([at(3, 0, 1, 5, 7), at(3, 1, 1, 5, 7)]).toEqual([23, 21]); // patch (1, 1), frame 1, pixel (5, 7)
    expect([at(4, 0, 0, 0, 0), at(4, 1, 0, 0, 0)]).toEqual([32, 0]); // next block to the right
    expect([at(12, 0, 0, 0, 0), at(12, 1, 0, 0, 0)]).toEqual([0, 32]); // first block of the second block row
  });

  it('hashes content: same pixels same hash, one changed byte a new one', () => {
    const again = processImage({ width: W, height: H, rgb: rgb.slice() }, cfg);
    expect(again.contentHash).toBe(out.contentHash);
    expect(out.contentHash).toMatch(/^[0-9a-f]{64}$/);
    const changed = rgb.slice();
    changed[1000] ^= 1;
    expect(processImage({ width: W, height: H, rgb: changed }, cfg).contentHash).not.toBe(out.contentHash);
    const otherNorm = processImage({ width: W, height: H, rgb }, { ...cfg, imageMean: [0.5, 0.5, 0.5] });
    expect(otherNorm.contentHash).not.toBe(out.contentHash);
  });

  it('refuses an extreme aspect ratio with a 400 naming where the image came from', () => {
    const thin = { width: 500, height: 2, rgb: new Uint8Array(500 * 2 * 3) };
    expect(() => processImage(thin, cfg, 'messages[1].content[0]')).toThrow(
      /^messages\[1\]\.content\[0\]: image 500x2 has an aspect ratio of 250\.0/,
    );
  });

  it('refuses an RGB buffer of the wrong length', () => {
    expect(() => processImage({ width: W, height: H, rgb: rgb.subarray(1) }, cfg)).toThrow(
      /should carry 18432 RGB bytes/,
    );
  });
});

/** transformers' 9-d view [grid_t, T, C, H/(P·M), M, P, W/(P·M), M, P] and permute (0, 3, 6, 4, 7, 2, 1, 5, 8). */
function permuteTransformers(chw: Float64Array): Float64Array {
  return permute(chw, [1, 2, 3, 64 / 32, 2, 16, 96 / 32, 2, 16], [0, 3, 6, 4, 7, 2, 1, 5, 8]);
}

/** Separable bicubic in plain f64 (Keys a = -0.5, kernel widened by the scale when shrinking), rounding per pass. */
function referenceResize(src: Uint8Array, w: number, h: number, ow: number, oh: number): Uint8Array {
  const pass = (input: Float64Array, inLen: number, outLen: number, lines: number, stride: number, step: number) => {
    const out = new Float64Array((input.length / inLen) * outLen);
    const scale = inLen / outLen;
    const support = 2 * Math.max(scale, 1);
    for (let o = 0; o < outLen; o++) {
      const center = (o + 0.5) * scale;
      const lo = Math.max(Math.trunc(center - support + 0.5), 0);
      const hi = Math.min(Math.trunc(center + support + 0.5), inLen);
      const wts: number[] = [];
      for (let i = lo; i < hi; i++) {
        const x = Math.abs((i - center + 0.5) / Math.max(scale, 1));
        wts.push(x < 1 ? 1.5 * x ** 3 - 2.5 * x ** 2 + 1 : x < 2 ? -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2 : 0);
      }
      const total = wts.reduce((a, b) => a + b, 0);
      for (let line = 0; line < lines; line++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let i = lo; i < hi; i++) s += (wts[i - lo] / total) * input[line * stride + i * step + c];
          out[line * (stride / inLen) * outLen + o * step + c] = Math.min(255, Math.max(0, Math.round(s)));
        }
      }
    }
    return out;
  };
  let img = Float64Array.from(src);
  if (ow !== w) img = pass(img, w, ow, h, w * 3, 3); // rows: line stride w·3, pixel step 3
  const wNow = ow;
  if (oh !== h) {
    // columns: transpose to reuse the row pass
    const t = new Float64Array(img.length);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < wNow; x++) for (let c = 0; c < 3; c++) t[(x * h + y) * 3 + c] = img[(y * wNow + x) * 3 + c];
    const r = pass(t, h, oh, wNow, h * 3, 3);
    img = new Float64Array(wNow * oh * 3);
    for (let x = 0; x < wNow; x++)
      for (let y = 0; y < oh; y++) for (let c = 0; c < 3; c++) img[(y * wNow + x) * 3 + c] = r[(x * oh + y) * 3 + c];
  }
  return Uint8Array.from(img);
}

describe('resizeBicubicRgb8', () => {
  const rand = seededRandom(3);
  const cases: [number, number, number, number][] = [
    [37, 53, 96, 128], // upscale both
    [640, 480, 64, 96], // shrink 10x / 5x (antialias widens the kernel)
    [100, 75, 96, 64],
    [300, 300, 299, 301],
    [17, 900, 32, 1024],
  ];
  it.each(cases)('%ix%i -> %ix%i is within 1 of an f64 bicubic (fixed-point weights)', (w, h, ow, oh) => {
    const src = new Uint8Array(w * h * 3);
    for (let i = 0; i < src.length; i++) {
      const x = Math.floor(i / 3) % w;
      src[i] =
        i % 3 === 0 ? Math.floor((x * 255) / (w - 1)) : i % 3 === 1 ? Math.floor(rand() * 256) : (x >> 2) % 2 ? 255 : 0;
    }
    const got = resizeBicubicRgb8(src, w, h, ow, oh);
    const ref = referenceResize(src, w, h, ow, oh);
    let maxAbs = 0;
    let off = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got[i] - ref[i]);
      maxAbs = Math.max(maxAbs, d);
      if (d) off++;
    }
    expect(maxAbs).toBeLessThanOrEqual(1);
    expect(off / ref.length).toBeLessThan(0.05);
  });

  it('is the identity when the size does not change', () => {
    const src = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256);
    expect(resizeBicubicRgb8(src, 32, 32, 32, 32)).toEqual(src);
  });
});

// Bicubic resize of 8-bit RGB, bit-exact with what transformers 5's Qwen2-VL image processor produces on the
// CPU: torchvision's resize(uint8 tensor, BICUBIC, antialias=True) runs PyTorch's separable uint8 antialias
// kernel (a port of PIL's ImagingResample). Keys cubic with a = -0.5; when shrinking, the kernel is stretched by
// the scale (antialias); weights are normalized per output pixel in f64, then turned into int16 fixed point with
// the largest precision that keeps the biggest weight below 2^15; width is resampled first into a uint8
// intermediate, then height; each pass rounds (+half) and clamps to 0..255. A pass whose size does not change is
// skipped (it would be the identity anyway).
// Measured: the fixture PNG (100x75 -> 96x64) through transformers 5.17 gives pixel_values equal to ours bit for
// bit (max and mean abs error 0). PIL's own resize (Qwen2VLImageProcessorPil, fixed 22-bit weights) differs from
// this by at most 1 in a byte (2/255 = 0.0078 after normalization) on 0.06%..21% of the bytes depending on the
// scale (checked offline against Pillow 12.3 on 9 up/down sizes; with 22-bit weights this code matches Pillow exactly).

/** One axis' filter: output i reads inputs start[i] .. start[i]+count[i]-1 with int weights at weights[i·taps ..]. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  taps: number;
  weights: Int32Array;
  precision: number;
}

function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/** C's (int64_t) cast: truncation toward zero. */
const trunc = Math.trunc;

export function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const f64 = new Float64Array(outSize * taps);
  let wMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(trunc(center - support + 0.5), 0);
    // PyTorch clamps the tap count: rounding can push it one past `taps`.
    const xsize = Math.min(Math.max(Math.min(trunc(center + support + 0.5), inSize) - xmin, 0), taps);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = cubic((j + xmin - center + 0.5) * invScale);
      f64[i * taps + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        f64[i * taps + j] /= total;
        wMax = Math.max(wMax, f64[i * taps + j]);
      }
    }
    start[i] = xmin;
    count[i] = xsize;
  }
  let precision = 0;
  for (precision = 0; precision < 22; precision++) {
    if (trunc(0.5 + wMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const weights = new Int32Array(outSize * taps);
  const one = 2 ** precision;
  for (let k = 0; k < f64.length; k++) {
    const v = f64[k];
    // The int16 cast of the C code: truncation after adding ±0.5.
    weights[k] = v < 0 ? trunc(-0.5 + v * one) : trunc(0.5 + v * one);
  }
  return { start, count, taps, weights, precision };
}

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resizeWidth(src: Uint8Array, w: number, h: number, outW: number): Uint8Array {
  const ax = axisWeights(w, outW);
  const out = new Uint8Array(outW * h * 3);
  const half = ax.precision > 0 ? 1 << (ax.precision - 1) : 0;
  for (let y = 0; y < h; y++) {
    const rowIn = y * w * 3;
    const rowOut = y * outW * 3;
    for (let x = 0; x < outW; x++) {
      const k0 = x * ax.taps;
      const n = ax.count[x];
      let p = rowIn + ax.start[x] * 3;
      let r = half;
      let g = half;
      let b = half;
      for (let j = 0; j < n; j++, p += 3) {
        const wt = ax.weights[k0 + j];
        r += src[p] * wt;
        g += src[p + 1] * wt;
        b += src[p + 2] * wt;
      }
      const o = rowOut + x * 3;
      out[o] = clamp8(r >> ax.precision);
      out[o + 1] = clamp8(g >> ax.precision);
      out[o + 2] = clamp8(b >> ax.precision);
    }
  }
  return out;
}

function resizeHeight(src: Uint8Array, w: number, h: number, outH: number): Uint8Array {
  const ax = axisWeights(h, outH);
  const rowLen = w * 3;
  const out = new Uint8Array(rowLen * outH);
  const prec = ax.precision;
  const half = prec > 0 ? 1 << (prec - 1) : 0;
  const offs = new Int32Array(ax.taps);
  const wts = new Int32Array(ax.taps);
  for (let y = 0; y < outH; y++) {
    const n = ax.count[y];
    for (let j = 0; j < n; j++) {
      offs[j] = (ax.start[y] + j) * rowLen;
      wts[j] = ax.weights[y * ax.taps + j];
    }
    const rowOut = y * rowLen;
    if (n === 4) {
      // Upscaling (and mild shrinking) reads 4 rows: unrolled, it is the hot loop for screenshots.
      const [o0, o1, o2, o3] = offs;
      const [w0, w1, w2, w3] = wts;
      for (let c = 0; c < rowLen; c++) {
        const v = (half + src[o0 + c] * w0 + src[o1 + c] * w1 + src[o2 + c] * w2 + src[o3 + c] * w3) >> prec;
        out[rowOut + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      continue;
    }
    for (let c = 0; c < rowLen; c++) {
      let acc = half;
      for (let j = 0; j < n; j++) acc += src[offs[j] + c] * wts[j];
      const v = acc >> prec;
      out[rowOut + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** Resizes row-major 8-bit RGB to outW x outH. */
export function resizeBicubicRgb8(src: Uint8Array, w: number, h: number, outW: number, outH: number): Uint8Array {
  let img = src;
  if (outW !== w) img = resizeWidth(img, w, h, outW);
  if (outH !== h) img = resizeHeight(img, outW, h, outH);
  return img === src ? src.slice() : img;
}

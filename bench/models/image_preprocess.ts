// Image preprocessing micro-benchmark on the CPU: decode (sharp, PNG) and processImage (smart_resize, bicubic,
// normalize, patch layout, content hash) for 448x448, 1024x768 and 1920x1080 screenshot-like images, with the
// preprocessor_config.json of the released Qwen3-VL-30B-A3B (size {shortest_edge: 65536, longest_edge: 16777216},
// pixel counts; patch 16, merge 2, temporal 2, mean/std 0.5). Prints the median ms per image of each stage and the best total (the
// machine may be shared: the best run is the least disturbed one).
//   npx tsx bench/models/image_preprocess.ts [--reps N] [--model DIR]
// --model DIR reads DIR/preprocessor_config.json instead of the built-in 30B values.
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import {
  decodeImage,
  type ImageProcessorConfig,
  processImage,
  readImageProcessorConfig,
} from '../../models/qwen3_vl_moe/processor/index.js';
import { resizeBicubicRgb8 } from '../../models/qwen3_vl_moe/processor/resize.js';
import { smartResize } from '../../models/qwen3_vl_moe/processor/smart_resize.js';

const QWEN3_VL_30B: ImageProcessorConfig = {
  patchSize: 16,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 65536,
  maxPixels: 16777216,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  rescaleFactor: 1 / 255,
};

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A screenshot-like image: flat panels, a gradient bar and text-like noise stripes. */
function screenshot(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  let seed = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (y < height / 12) {
        rgb.set([(x * 255) / width, 80, 160], o);
      } else if ((y >> 4) % 3 === 0 && x % (width / 4) > 20) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const v = seed >>> 24 > 128 ? 30 : 235;
        rgb.set([v, v, v], o);
      } else {
        rgb.set([245, 245, x < width / 5 ? 225 : 250], o);
      }
    }
  }
  return rgb;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const reps = Number(argValue('--reps') ?? 5);
const modelDir = argValue('--model');
const cfg = modelDir ? await readImageProcessorConfig(modelDir) : QWEN3_VL_30B;
console.log(
  `image preprocessing, ${reps} reps, min/max pixels ${cfg.minPixels}/${cfg.maxPixels} (${modelDir ?? 'Qwen3-VL-30B-A3B release config'})`,
);
console.log(
  'size        resized     grid       tokens  decode ms  resize ms  process ms (incl. resize)  total ms  best total',
);
for (const [w, h] of [
  [448, 448],
  [1024, 768],
  [1920, 1080],
]) {
  const png = await sharp(screenshot(w, h), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
  const tDecode: number[] = [];
  const tResize: number[] = [];
  const tProcess: number[] = [];
  const tTotal: number[] = [];
  let last = null as ReturnType<typeof processImage> | null;
  let resized = '';
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    const img = await decodeImage(png, 'bench');
    const t1 = performance.now();
    const size = smartResize(img.height, img.width, cfg.patchSize * cfg.mergeSize, cfg.minPixels, cfg.maxPixels);
    resizeBicubicRgb8(img.rgb, img.width, img.height, size.width, size.height);
    const t2 = performance.now();
    last = processImage(img, cfg);
    const t3 = performance.now();
    resized = `${size.width}x${size.height}`;
    if (r === 0) continue; // warm-up
    tDecode.push(t1 - t0);
    tResize.push(t2 - t1);
    tProcess.push(t3 - t2);
    tTotal.push(t1 - t0 + (t3 - t2));
  }
  const g = last!.gridThw;
  const d = median(tDecode);
  const p = median(tProcess);
  console.log(
    `${`${w}x${h}`.padEnd(12)}${resized.padEnd(12)}${g.join('x').padEnd(11)}${String(last!.numTokens).padEnd(8)}` +
      `${d.toFixed(1).padStart(9)}  ${median(tResize).toFixed(1).padStart(9)}  ${p.toFixed(1).padStart(26)}  ${(d + p).toFixed(1).padStart(8)}  ${Math.min(
        ...tTotal,
      )
        .toFixed(1)
        .padStart(10)}`,
  );
}

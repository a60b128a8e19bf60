// transformers' Qwen2-VL smart_resize (transformers 5, shared by Qwen3-VL): both sides become multiples of
// `factor` (patch·merge), the area lands within [minPixels, maxPixels], the aspect ratio is kept as closely as
// possible. Python's round() is round-half-to-even, so 48/32 = 1.5 → 2 but 80/32 = 2.5 → 2.
import { ImageInputError } from './errors.js';

/** Python 3 round() of a float to an integer: ties go to the even neighbour. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Largest aspect ratio transformers accepts (it raises ValueError above it). */
export const MAX_ASPECT_RATIO = 200;

export function smartResize(
  height: number,
  width: number,
  factor: number,
  minPixels: number,
  maxPixels: number,
  where: string | null = null,
): { height: number; width: number } {
  const at = where === null ? '' : `${where}: `;
  if (!(height > 0 && width > 0)) {
    throw new ImageInputError('DAWN_ERR_IMAGE_SIZE', `${at}image size ${width}x${height} is empty`, where);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > MAX_ASPECT_RATIO) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_ASPECT',
      `${at}image ${width}x${height} has an aspect ratio of ${ratio.toFixed(1)}; at most ${MAX_ASPECT_RATIO} is accepted`,
      where,
    );
  }
  let hBar = pyRound(height / factor) * factor;
  let wBar = pyRound(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: hBar, width: wBar };
}

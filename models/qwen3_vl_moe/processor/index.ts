// Qwen3-VL image preprocessing, as transformers' Qwen2-VL image processor: decode → smart_resize (multiples of
// patch·merge within min/max pixels) → bicubic → rescale, normalize → temporal copies → patches in merge-block order.
export type { ImageProcessorConfig, ProcessedImage, RgbImage } from './types.js';
export { readImageProcessorConfig, parseImageProcessorConfig } from './config.js';
export { decodeImage, MAX_INPUT_PIXELS } from './decode.js';
export { expandImagePads } from './expand.js';
export { ImageInputError } from './errors.js';
export { processImage } from './process.js';

import { ModelError } from '../../../core/errors.js';
import type { ImageProcessorConfig, ProcessedImage, RgbImage } from './types.js';

export function processImage(_img: RgbImage, _cfg: ImageProcessorConfig): ProcessedImage {
  throw new ModelError('DAWN_ERR_MODEL_NOT_IMPLEMENTED', 'processImage is not implemented yet');
}

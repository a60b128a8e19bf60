// Reads preprocessor_config.json the way transformers' Qwen2-VL image processor does. `size.shortest_edge` and
// `size.longest_edge` are pixel counts (min/max pixels), not edge lengths; `min_pixels`/`max_pixels`, when
// present, win (transformers folds them into `size` the same way).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '../../../core/errors.js';
import type { ImageProcessorConfig } from './types.js';

/** transformers' Qwen2VLImageProcessor defaults, used for fields the file leaves out. */
const DEFAULTS: ImageProcessorConfig = {
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
  rescaleFactor: 1 / 255,
};

type Json = Record<string, unknown>;

export async function readImageProcessorConfig(modelDir: string): Promise<ImageProcessorConfig> {
  const file = join(modelDir, 'preprocessor_config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelError('DAWN_ERR_MODEL_PREPROCESSOR_MISSING', `cannot read ${file}: ${(err as Error).message}`, {
      hint: 'a Qwen3-VL checkpoint ships preprocessor_config.json beside config.json',
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelError('DAWN_ERR_MODEL_PREPROCESSOR_JSON', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelError('DAWN_ERR_MODEL_PREPROCESSOR_JSON', `${file}: expected a JSON object at the top level`);
  }
  return parseImageProcessorConfig(json as Json, file);
}

/** Parses an already-read preprocessor_config.json object; `file` names it in errors. */
export function parseImageProcessorConfig(json: Json, file: string): ImageProcessorConfig {
  const bad = (field: string, expected: string, found: unknown): ModelError =>
    new ModelError(
      'DAWN_ERR_MODEL_PREPROCESSOR_FIELD',
      `${file}: field "${field}" should be ${expected}, found ${JSON.stringify(found)}`,
    );
  const positiveInt = (field: string, value: unknown, fallback: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw bad(field, 'a positive integer', value);
    }
    return value;
  };
  const positiveNumber = (field: string, value: unknown, fallback: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw bad(field, 'a positive number', value);
    }
    return value;
  };
  const triple = (field: string, value: unknown, fallback: [number, number, number]): [number, number, number] => {
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'number' && Number.isFinite(value)) return [value, value, value];
    if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && isFinite(v))) {
      throw bad(field, 'a list of 3 numbers (one per RGB channel)', value);
    }
    return [value[0], value[1], value[2]] as [number, number, number];
  };

  const size = json.size;
  if (size !== undefined && size !== null && (typeof size !== 'object' || Array.isArray(size))) {
    throw bad('size', 'an object {shortest_edge, longest_edge}', size);
  }
  const sizeObj = (size ?? {}) as Json;
  let minPixels = positiveInt('size.shortest_edge', sizeObj.shortest_edge, DEFAULTS.minPixels);
  let maxPixels = positiveInt('size.longest_edge', sizeObj.longest_edge, DEFAULTS.maxPixels);
  minPixels = positiveInt('min_pixels', json.min_pixels, minPixels);
  maxPixels = positiveInt('max_pixels', json.max_pixels, maxPixels);
  if (minPixels > maxPixels) {
    throw new ModelError(
      'DAWN_ERR_MODEL_PREPROCESSOR_FIELD',
      `${file}: min pixels (${minPixels}) exceed max pixels (${maxPixels}) (size.shortest_edge/longest_edge or min_pixels/max_pixels)`,
    );
  }
  // do_rescale / do_normalize false mean factor 1 / identity normalization, as transformers skips the step.
  const doRescale = json.do_rescale !== false;
  const doNormalize = json.do_normalize !== false;
  const imageStd = doNormalize ? triple('image_std', json.image_std, DEFAULTS.imageStd) : [1, 1, 1];
  if (imageStd.some((s) => s === 0)) throw bad('image_std', 'non-zero numbers', json.image_std);
  return {
    patchSize: positiveInt('patch_size', json.patch_size, DEFAULTS.patchSize),
    temporalPatchSize: positiveInt('temporal_patch_size', json.temporal_patch_size, DEFAULTS.temporalPatchSize),
    mergeSize: positiveInt('merge_size', json.merge_size, DEFAULTS.mergeSize),
    minPixels,
    maxPixels,
    imageMean: doNormalize ? triple('image_mean', json.image_mean, DEFAULTS.imageMean) : [0, 0, 0],
    imageStd: imageStd as [number, number, number],
    rescaleFactor: doRescale ? positiveNumber('rescale_factor', json.rescale_factor, DEFAULTS.rescaleFactor) : 1,
  };
}

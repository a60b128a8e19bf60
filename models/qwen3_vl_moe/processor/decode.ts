// Decodes a client's image bytes with sharp into 8-bit RGB. PNG, JPEG, WebP and GIF (first frame) are accepted.
// Alpha is dropped, not composited, as PIL's convert("RGB") in transformers' convert_to_rgb does (vLLM's loader
// composites on white instead; the goldens come from transformers); EXIF orientation is applied, as transformers'
// load_image (ImageOps.exif_transpose) does.
import type SharpDefault from 'sharp';
import { ModelError } from '../../../core/errors.js';
import { ImageInputError } from './errors.js';
import type { RgbImage } from './types.js';

let sharpLoading: Promise<typeof SharpDefault> | null = null;

/**
 * sharp (native libvips) loads on the first image, so text-only serving and the GPU device kit, which leaves
 * libvips out to fit its size budget, run without it.
 */
function loadSharp(): Promise<typeof SharpDefault> {
  sharpLoading ??= import('sharp').then(
    (m) => m.default,
    (err: Error) => {
      sharpLoading = null;
      throw new ModelError(
        'DAWN_ERR_IMAGE_DECODER_MISSING',
        `image input needs the sharp package, which failed to load: ${err.message}`,
        { hint: 'run npm ci (sharp ships prebuilt libvips for linux-x64)' },
      );
    },
  );
  return sharpLoading;
}

const FORMATS = new Set(['png', 'jpeg', 'webp', 'gif']);

/** Refuses decompression bombs before decoding: 8192² is far above anything the vision tower is fed. */
export const MAX_INPUT_PIXELS = 8192 * 8192;

export async function decodeImage(
  bytes: Uint8Array,
  where: string,
  opts: { maxInputPixels?: number } = {},
): Promise<RgbImage> {
  const limitInputPixels = opts.maxInputPixels ?? MAX_INPUT_PIXELS;
  if (bytes.length === 0) {
    throw new ImageInputError('DAWN_ERR_IMAGE_EMPTY', `${where}: the image is empty (0 bytes)`, where);
  }
  const sharp = await loadSharp();
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    format = meta.format;
    width = meta.width ?? 0;
    height = meta.pageHeight ?? meta.height ?? 0;
  } catch (err) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_UNDECODABLE',
      `${where}: cannot decode the image (${bytes.length} bytes starting ${hexStart(bytes)}): ${(err as Error).message}; expected png, jpeg, webp or gif`,
      where,
    );
  }
  if (format === undefined || !FORMATS.has(format)) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_FORMAT',
      `${where}: unsupported image format "${format ?? 'unknown'}"; expected png, jpeg, webp or gif`,
      where,
    );
  }
  if (width * height > limitInputPixels) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_TOO_LARGE',
      `${where}: the image is ${width}x${height} = ${width * height} pixels, above the limit of ${limitInputPixels}`,
      where,
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels, pages: 1, autoOrient: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new Error(`sharp returned ${info.channels} channels, expected 3`);
    }
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { width: info.width, height: info.height, rgb };
  } catch (err) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_UNDECODABLE',
      `${where}: cannot decode the ${format} image (${width}x${height}, ${bytes.length} bytes): ${(err as Error).message}`,
      where,
    );
  }
}

function hexStart(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

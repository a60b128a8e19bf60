// One image_url → its encoded bytes, by scheme: data: (inline base64), file:// (allowed directories only) or
// http(s) (fetched with a timeout and a byte cap). Anything else is a 400.
import { decodeDataUrl } from './data_url.js';
import { mediaError, shortUrl } from './errors.js';
import { fetchImage } from './http_fetch.js';
import { readLocalFile } from './local_file.js';
import type { MediaOptions } from './options.js';

export type ImageSourceKind = 'data' | 'file' | 'http';

export interface ImageBytes {
  bytes: Uint8Array;
  source: ImageSourceKind;
}

export function sourceKindOf(url: string): ImageSourceKind | null {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1].toLowerCase();
  if (scheme === 'data') return 'data';
  if (scheme === 'file') return 'file';
  if (scheme === 'http' || scheme === 'https') return 'http';
  return null;
}

export async function loadImageBytes(url: string, o: MediaOptions, param: string): Promise<ImageBytes> {
  const source = sourceKindOf(url);
  switch (source) {
    case 'data':
      return { bytes: decodeDataUrl(url, o.maxImageBytes, param), source };
    case 'file':
      return { bytes: await readLocalFile(url, o.allowedLocalMediaPaths, o.maxImageBytes, param), source };
    case 'http':
      return { bytes: await fetchImage(url, o, param), source };
    case null:
      throw mediaError(
        'DAWN_ERR_API_MEDIA_URL',
        `expected a data:, file:// or http(s):// URL, found ${shortUrl(url)}`,
        param,
      );
  }
}

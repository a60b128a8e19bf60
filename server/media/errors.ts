// The 400s of image intake, one code per kind of failure so clients (and tests) can tell them apart. Every
// message names where the image was in the request (param) and what was wrong with it.
import { ApiError } from '../../core/errors.js';

export type MediaErrorCode =
  /** The model takes no images, or the input kind (video) is not supported. */
  | 'DAWN_ERR_API_MEDIA_UNSUPPORTED'
  /** More items than --limit-mm-per-prompt allows. */
  | 'DAWN_ERR_API_MEDIA_LIMIT'
  /** A URL this server cannot read: unknown scheme, malformed data: URL. */
  | 'DAWN_ERR_API_MEDIA_URL'
  /** A file:// path outside --allowed-local-media-path, or a host outside --allowed-media-domains. */
  | 'DAWN_ERR_API_MEDIA_FORBIDDEN'
  /** More bytes than --max-image-bytes. */
  | 'DAWN_ERR_API_MEDIA_TOO_LARGE'
  /** A missing file, an unreachable host, an HTTP error status, a timeout. */
  | 'DAWN_ERR_API_MEDIA_FETCH'
  /** The bytes are not an image the decoder reads (png, jpeg, webp, gif). */
  | 'DAWN_ERR_API_MEDIA_DECODE';

export function mediaError(code: MediaErrorCode, message: string, param: string): ApiError {
  return new ApiError(400, code, `${param}: ${message}`, { param });
}

/** A URL shortened for messages (data: URLs can be megabytes long). */
export function shortUrl(url: string): string {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',');
    return `${url.slice(0, comma >= 0 ? Math.min(comma, 64) : 64)},… (${url.length} characters)`;
  }
  return url.length > 200 ? `${url.slice(0, 200)}…` : url;
}

export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;
}

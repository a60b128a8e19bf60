// data: URLs (RFC 2397) carrying an image as base64, the way the OpenAI API sends inline images:
// data:image/png;base64,iVBOR… The size is checked from the text before anything is decoded.
import { formatMiB, mediaError } from './errors.js';

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/** The decoded bytes of a base64 data: URL; a 400 naming `param` when it is malformed or too large. */
export function decodeDataUrl(url: string, maxBytes: number, param: string): Uint8Array {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0)
    throw mediaError('DAWN_ERR_API_MEDIA_URL', 'a data: URL needs the form data:<type>;base64,<data>', param);
  const header = url.slice(5, comma).split(';');
  const mediaType = header[0].trim().toLowerCase();
  if (!header.slice(1).some((p) => p.trim().toLowerCase() === 'base64'))
    throw mediaError(
      'DAWN_ERR_API_MEDIA_URL',
      `only base64 data: URLs are supported, found data:${header.join(';')}`,
      param,
    );
  // The decoder finds the format from the bytes; an explicit non-image type is a client mix-up worth naming.
  if (mediaType !== '' && !mediaType.startsWith('image/') && mediaType !== 'application/octet-stream')
    throw mediaError('DAWN_ERR_API_MEDIA_URL', `expected an image/* data: URL, found ${mediaType}`, param);
  const text = url.slice(comma + 1).replace(/\s+/g, '');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const size = Math.floor((text.length * 3) / 4) - padding;
  if (size > maxBytes)
    throw mediaError(
      'DAWN_ERR_API_MEDIA_TOO_LARGE',
      `the image is ${formatMiB(size)} (${size} bytes), more than --max-image-bytes ${maxBytes}`,
      param,
    );
  if (!BASE64.test(text) || text.length % 4 === 1)
    throw mediaError('DAWN_ERR_API_MEDIA_URL', 'the data: URL is not valid base64', param);
  const bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  if (bytes.length === 0) throw mediaError('DAWN_ERR_API_MEDIA_DECODE', 'the data: URL holds no bytes', param);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

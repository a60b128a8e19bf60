// http(s) image URLs: Node's fetch under one AbortSignal.timeout for the whole download (connect, redirects,
// body), the body streamed with a byte cap (a Content-Length over the cap fails before reading), redirects
// followed by hand so every hop is checked against --allowed-media-domains.
import { formatMiB, mediaError, shortUrl } from './errors.js';
import { MAX_REDIRECTS, type MediaOptions } from './options.js';

export type FetchOptions = Pick<
  MediaOptions,
  'allowedMediaDomains' | 'fetchTimeoutMs' | 'maxImageBytes' | 'allowRedirects'
>;

function checkDomain(url: URL, allowed: readonly string[] | null, param: string): void {
  if (allowed === null) return;
  const host = url.hostname.toLowerCase();
  if (!allowed.includes(host))
    throw mediaError(
      'DAWN_ERR_API_MEDIA_FORBIDDEN',
      `the host ${host} is not in --allowed-media-domains (${allowed.join(', ')})`,
      param,
    );
}

export async function fetchImage(url: string, o: FetchOptions, param: string): Promise<Uint8Array> {
  const timeoutS = o.fetchTimeoutMs / 1000;
  const signal = AbortSignal.timeout(o.fetchTimeoutMs);
  const failed = (err: unknown): never => {
    if ((err as Error).name === 'TimeoutError' || signal.aborted)
      throw mediaError(
        'DAWN_ERR_API_MEDIA_FETCH',
        `fetching ${shortUrl(url)} timed out after ${timeoutS} s (--media-fetch-timeout)`,
        param,
      );
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw mediaError('DAWN_ERR_API_MEDIA_FETCH', `could not fetch ${shortUrl(url)}: ${why}`, param);
  };
  let current = new URL(url);
  let response: Response;
  for (let hop = 0; ; hop++) {
    checkDomain(current, o.allowedMediaDomains, param);
    response = await fetch(current, { signal, redirect: 'manual' }).catch(failed);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null) break;
    await response.body?.cancel();
    if (!o.allowRedirects)
      throw mediaError(
        'DAWN_ERR_API_MEDIA_FETCH',
        `${shortUrl(current.href)} redirects (HTTP ${response.status}) and VLLM_MEDIA_URL_ALLOW_REDIRECTS=0`,
        param,
      );
    if (hop >= MAX_REDIRECTS)
      throw mediaError('DAWN_ERR_API_MEDIA_FETCH', `${shortUrl(url)}: more than ${MAX_REDIRECTS} redirects`, param);
    current = new URL(location, current);
    if (current.protocol !== 'http:' && current.protocol !== 'https:')
      throw mediaError('DAWN_ERR_API_MEDIA_FORBIDDEN', `a redirect to ${current.protocol} is not followed`, param);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw mediaError(
      'DAWN_ERR_API_MEDIA_FETCH',
      `fetching ${shortUrl(current.href)} returned HTTP ${response.status}`,
      param,
    );
  }
  const tooLarge = (what: string) =>
    mediaError(
      'DAWN_ERR_API_MEDIA_TOO_LARGE',
      `${shortUrl(url)} ${what} than --max-image-bytes ${o.maxImageBytes}`,
      param,
    );
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > o.maxImageBytes) {
    await response.body?.cancel();
    throw tooLarge(`is ${formatMiB(declared)} (Content-Length ${declared}), more`);
  }
  if (response.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read().catch(failed);
      if (done) break;
      length += value.length;
      if (length > o.maxImageBytes) throw tooLarge('sent more bytes');
      chunks.push(value);
    }
  } finally {
    // Stops the download when the cap or the timeout ended it early.
    await reader.cancel().catch(() => undefined);
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

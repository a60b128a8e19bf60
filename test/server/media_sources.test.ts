// Image intake below the routes: data: URLs, file:// under --allowed-local-media-path (real paths: `..` and
// symlinks cannot escape), http(s) with a timeout, a byte cap and checked redirects, and the flag parsing.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDataUrl } from '../../server/media/data_url.js';
import { fetchImage, type FetchOptions } from '../../server/media/http_fetch.js';
import { loadImageBytes } from '../../server/media/image_source.js';
import { readLocalFile } from '../../server/media/local_file.js';
import { mediaOptionsFrom, parseLimitMmPerPrompt } from '../../server/media/options.js';

const P = 'messages[0].content[1].image_url';
const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255);

describe('data: URLs', () => {
  const url = `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`;

  it('decodes base64 to the bytes', () => {
    expect(decodeDataUrl(url, 1000, P)).toEqual(bytes);
  });

  it('refuses more bytes than the cap before decoding, naming the part and the flag', () => {
    expect(() => decodeDataUrl(url, 299, P)).toThrow(
      expect.objectContaining({
        status: 400,
        code: 'DAWN_ERR_API_MEDIA_TOO_LARGE',
        param: P,
        message: expect.stringContaining('--max-image-bytes 299'),
      }),
    );
    expect(decodeDataUrl(url, 300, P)).toHaveLength(300);
  });

  it('refuses non-base64, non-image and malformed URLs', () => {
    expect(() => decodeDataUrl('data:image/png,abc', 100, P)).toThrow(/only base64 data: URLs/);
    expect(() => decodeDataUrl('data:text/plain;base64,aGVsbG8=', 100, P)).toThrow(/expected an image\/\* data: URL/);
    expect(() => decodeDataUrl('data:image/png;base64,@@@@', 100, P)).toThrow(/not valid base64/);
    expect(() => decodeDataUrl('data:image/png;base64', 100, P)).toThrow(/data:<type>;base64,<data>/);
    expect(() => decodeDataUrl('data:image/png;base64,', 100, P)).toThrow(
      expect.objectContaining({ code: 'DAWN_ERR_API_MEDIA_DECODE' }),
    );
  });

  it('an unknown scheme is a 400 naming the accepted ones', async () => {
    const o = mediaOptionsFrom({ env: {} });
    await expect(loadImageBytes('ftp://example.com/a.png', o, P)).rejects.toMatchObject({
      status: 400,
      code: 'DAWN_ERR_API_MEDIA_URL',
      message: expect.stringContaining('expected a data:, file:// or http(s):// URL'),
    });
  });
});

describe('file:// URLs', () => {
  let root: string;
  let allowed: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'dawn-media-'));
    allowed = join(root, 'allowed');
    mkdirSync(join(allowed, 'sub'), { recursive: true });
    writeFileSync(join(allowed, 'sub', 'ok.png'), bytes);
    writeFileSync(join(root, 'secret.png'), bytes);
    symlinkSync(join(root, 'secret.png'), join(allowed, 'link-out.png'));
    symlinkSync(join(allowed, 'sub', 'ok.png'), join(allowed, 'link-in.png'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const dirs = () => mediaOptionsFrom({ allowedLocalMediaPath: allowed, env: {} }).allowedLocalMediaPaths;
  const url = (path: string) => pathToFileURL(path).href;

  it('reads a file under an allowed directory (also through a symlink that stays inside)', async () => {
    expect(await readLocalFile(url(join(allowed, 'sub', 'ok.png')), dirs(), 1000, P)).toEqual(bytes);
    expect(await readLocalFile(url(join(allowed, 'link-in.png')), dirs(), 1000, P)).toEqual(bytes);
  });

  it('refuses a ../ escape, a symlink out and any file when no directory is allowed', async () => {
    const forbidden = { status: 400, code: 'DAWN_ERR_API_MEDIA_FORBIDDEN', param: P };
    // pathToFileURL would normalise the `..` away; the raw URL keeps it.
    const escape = `${url(allowed)}/sub/../../secret.png`;
    expect(escape).toContain('/../');
    await expect(readLocalFile(escape, dirs(), 1000, P)).rejects.toMatchObject(forbidden);
    await expect(readLocalFile(url(join(allowed, 'link-out.png')), dirs(), 1000, P)).rejects.toMatchObject({
      ...forbidden,
      message: expect.stringContaining('not under an --allowed-local-media-path directory'),
    });
    await expect(readLocalFile(url(join(allowed, 'sub', 'ok.png')), [], 1000, P)).rejects.toMatchObject({
      ...forbidden,
      message: expect.stringContaining('without --allowed-local-media-path'),
    });
  });

  it('a missing file, a directory and an oversized file are 400s', async () => {
    await expect(readLocalFile(url(join(allowed, 'nope.png')), dirs(), 1000, P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FETCH',
    });
    await expect(readLocalFile(url(join(allowed, 'sub')), dirs(), 1000, P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FETCH',
      message: expect.stringContaining('not a regular file'),
    });
    await expect(readLocalFile(url(join(allowed, 'sub', 'ok.png')), dirs(), 299, P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_TOO_LARGE',
    });
  });

  it('the flag must name existing directories', () => {
    expect(() => mediaOptionsFrom({ allowedLocalMediaPath: join(root, 'missing'), env: {} })).toThrow(/does not exist/);
    expect(() => mediaOptionsFrom({ allowedLocalMediaPath: join(root, 'secret.png'), env: {} })).toThrow(
      /is not a directory/,
    );
  });
});

describe('http(s) URLs', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/ok.png') res.end(Buffer.from(bytes));
      else if (path === '/big-declared.png') {
        res.setHeader('content-length', 5000);
        res.end(Buffer.alloc(5000));
      } else if (path === '/big-chunked.png') {
        // No Content-Length: the cap has to stop the stream itself.
        res.write(Buffer.alloc(600));
        res.write(Buffer.alloc(600));
        res.end();
      } else if (path === '/slow.png') {
        res.write(Buffer.alloc(10)); // headers and a little body, then nothing
      } else if (path === '/redirect') {
        res.statusCode = 302;
        res.setHeader('location', '/ok.png');
        res.end();
      } else if (path === '/redirect-away') {
        res.statusCode = 302;
        res.setHeader('location', 'http://localhost.invalid/ok.png');
        res.end();
      } else {
        res.statusCode = 404;
        res.end('not found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const options = (o: Partial<FetchOptions> = {}): FetchOptions => ({
    allowedMediaDomains: null,
    fetchTimeoutMs: 2000,
    maxImageBytes: 1000,
    allowRedirects: true,
    ...o,
  });

  it('fetches the bytes, following a redirect', async () => {
    expect(await fetchImage(`${base}/ok.png`, options(), P)).toEqual(bytes);
    expect(await fetchImage(`${base}/redirect`, options(), P)).toEqual(bytes);
  });

  it('refuses a body over the cap, declared or streamed', async () => {
    const tooLarge = { status: 400, code: 'DAWN_ERR_API_MEDIA_TOO_LARGE', param: P };
    await expect(fetchImage(`${base}/big-declared.png`, options(), P)).rejects.toMatchObject({
      ...tooLarge,
      message: expect.stringContaining('Content-Length 5000'),
    });
    await expect(fetchImage(`${base}/big-chunked.png`, options(), P)).rejects.toMatchObject(tooLarge);
  });

  it('times out a stalled download, naming the flag', async () => {
    const start = Date.now();
    await expect(fetchImage(`${base}/slow.png`, options({ fetchTimeoutMs: 300 }), P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FETCH',
      message: expect.stringContaining('timed out after 0.3 s (--media-fetch-timeout)'),
    });
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('an error status, an unreachable host and a refused redirect are 400s', async () => {
    await expect(fetchImage(`${base}/missing.png`, options(), P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FETCH',
      message: expect.stringContaining('returned HTTP 404'),
    });
    // A port nothing listens on (the test server's, once closed, would race): port 9 (discard) on loopback.
    await expect(fetchImage('http://127.0.0.1:9/x.png', options(), P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FETCH',
      message: expect.stringContaining('could not fetch'),
    });
    await expect(fetchImage(`${base}/redirect`, options({ allowRedirects: false }), P)).rejects.toMatchObject({
      message: expect.stringContaining('VLLM_MEDIA_URL_ALLOW_REDIRECTS=0'),
    });
    const onlyLoopback = options({ allowedMediaDomains: ['127.0.0.1'] });
    expect(await fetchImage(`${base}/ok.png`, onlyLoopback, P)).toEqual(bytes);
    await expect(fetchImage(`${base}/redirect-away`, onlyLoopback, P)).rejects.toMatchObject({
      code: 'DAWN_ERR_API_MEDIA_FORBIDDEN',
      message: expect.stringContaining('localhost.invalid is not in --allowed-media-domains'),
    });
  });
});

describe('flags', () => {
  it('--limit-mm-per-prompt takes vLLM JSON, both forms; unnamed modalities keep 999', () => {
    expect(parseLimitMmPerPrompt('{"image": 2}')).toEqual({ image: 2, video: 999 });
    expect(parseLimitMmPerPrompt('{"image": {"count": 1, "width": 512}, "video": 0, "audio": 1}')).toEqual({
      image: 1,
      video: 0,
    });
    expect(parseLimitMmPerPrompt(null)).toEqual({ image: 999, video: 999 });
    expect(() => parseLimitMmPerPrompt('image=2')).toThrow(/expected JSON like/);
    expect(() => parseLimitMmPerPrompt('{"image": -1}')).toThrow(/"image" must be a count/);
  });

  it('timeout and redirects follow vLLM environment variables unless the flag is given', () => {
    expect(mediaOptionsFrom({ env: {} })).toMatchObject({ fetchTimeoutMs: 5000, allowRedirects: true });
    const env = { VLLM_IMAGE_FETCH_TIMEOUT: '12', VLLM_MEDIA_URL_ALLOW_REDIRECTS: '0' };
    expect(mediaOptionsFrom({ env })).toMatchObject({ fetchTimeoutMs: 12000, allowRedirects: false });
    expect(mediaOptionsFrom({ env, fetchTimeoutS: 0.5 }).fetchTimeoutMs).toBe(500);
    expect(() => mediaOptionsFrom({ env: {}, fetchTimeoutS: 0 })).toThrow(/positive number of seconds/);
    expect(() => mediaOptionsFrom({ env: {}, maxImageBytes: 1.5 })).toThrow(/--max-image-bytes/);
  });
});

// file:// URLs, read only under the directories given by --allowed-local-media-path. The check is on the real
// path (symlinks and `..` resolved), so neither a `../` in the URL nor a symlink inside an allowed directory can
// reach a file outside it.
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMiB, mediaError } from './errors.js';

/** `real` lies strictly inside `dir` (both real paths). */
export function isInside(dir: string, real: string): boolean {
  const rel = relative(dir, real);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

export async function readLocalFile(
  url: string,
  allowedDirs: readonly string[],
  maxBytes: number,
  param: string,
): Promise<Uint8Array> {
  if (allowedDirs.length === 0)
    throw mediaError(
      'DAWN_ERR_API_MEDIA_FORBIDDEN',
      'cannot load local files without --allowed-local-media-path (the server was started without it)',
      param,
    );
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (err) {
    throw mediaError('DAWN_ERR_API_MEDIA_URL', `not a local file URL: ${(err as Error).message}`, param);
  }
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    // The same answer whether the file is missing or merely outside: no probing of the file system.
    throw mediaError('DAWN_ERR_API_MEDIA_FETCH', `${path} does not exist or is not readable`, param);
  }
  if (!allowedDirs.some((dir) => isInside(dir, real)))
    throw mediaError(
      'DAWN_ERR_API_MEDIA_FORBIDDEN',
      `${path} is not under an --allowed-local-media-path directory (${allowedDirs.join(', ')})`,
      param,
    );
  const handle = await open(real, 'r').catch(() => {
    throw mediaError('DAWN_ERR_API_MEDIA_FETCH', `${path} is not readable`, param);
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw mediaError('DAWN_ERR_API_MEDIA_FETCH', `${path} is not a regular file`, param);
    if (info.size > maxBytes)
      throw mediaError(
        'DAWN_ERR_API_MEDIA_TOO_LARGE',
        `${path} is ${formatMiB(info.size)} (${info.size} bytes), more than --max-image-bytes ${maxBytes}`,
        param,
      );
    // Read at most maxBytes + 1, in case the file grew since stat.
    const buffer = new Uint8Array(info.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes)
      throw mediaError('DAWN_ERR_API_MEDIA_TOO_LARGE', `${path} is larger than --max-image-bytes ${maxBytes}`, param);
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

// One open safetensors file: the validated header plus positional reads through a file handle. Tensors are read
// by byte range, never by loading the whole file, because shards run to tens of GB.
import { type FileHandle, open } from 'node:fs/promises';
import { basename } from 'node:path';
import { LoaderError } from '../core/errors.js';
import { parseSafetensorsHeader, readHeaderLength, type TensorEntry } from './safetensors_header.js';

/** fs.read moves at most 2 GiB per call; larger ranges are read in pieces. */
const maxReadBytes = 1 << 30;

export class SafetensorsFile {
  readonly path: string;
  readonly fileName: string;
  readonly fileBytes: number;
  readonly entries: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly handle: FileHandle;

  private constructor(
    path: string,
    handle: FileHandle,
    fileBytes: number,
    entries: TensorEntry[],
    metadata: Record<string, string>,
  ) {
    this.path = path;
    this.fileName = basename(path);
    this.handle = handle;
    this.fileBytes = fileBytes;
    this.entries = new Map(entries.map((e) => [e.name, e]));
    this.metadata = metadata;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw new LoaderError('DAWN_ERR_LOADER_FILE_UNREADABLE', `cannot open ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      const fileBytes = (await handle.stat()).size;
      const name = basename(path);
      const prefix = new Uint8Array(Math.min(8, fileBytes));
      await readFully(handle, prefix, 0, path);
      const headerBytes = readHeaderLength(prefix, fileBytes, name);
      const json = new Uint8Array(headerBytes);
      await readFully(handle, json, 8, path);
      const header = parseSafetensorsHeader(json, fileBytes, name);
      return new SafetensorsFile(path, handle, fileBytes, header.entries, header.metadata);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) {
      throw new LoaderError('DAWN_ERR_LOADER_MISSING_TENSOR', `tensor "${name}" is not in ${this.fileName}`);
    }
    return e;
  }

  /** Reads `byteLength` bytes starting `byteOffset` bytes into the tensor's data. */
  async readRange(entry: TensorEntry, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > entry.byteLength) {
      throw new LoaderError(
        'DAWN_ERR_LOADER_BAD_RANGE',
        `read of bytes [${byteOffset}, ${byteOffset + byteLength}) is outside tensor "${entry.name}" ` +
          `(${entry.byteLength} bytes) in ${this.fileName}`,
      );
    }
    const out = new Uint8Array(byteLength);
    await readFully(this.handle, out, entry.byteOffset + byteOffset, this.path);
    return out;
  }

  read(entry: TensorEntry): Promise<Uint8Array> {
    return this.readRange(entry, 0, entry.byteLength);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readFully(handle: FileHandle, out: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < out.byteLength) {
    const want = Math.min(out.byteLength - done, maxReadBytes);
    const { bytesRead } = await handle.read(out, done, want, position + done);
    if (bytesRead === 0) {
      throw new LoaderError(
        'DAWN_ERR_LOADER_CORRUPT_FILE',
        `safetensors file ${basename(path)} is corrupt: unexpected end of file at byte ${position + done}`,
        { hint: 'the file shrank while reading or is truncated' },
      );
    }
    done += bytesRead;
  }
}

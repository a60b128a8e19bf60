// Parses and strictly validates a safetensors header: u64 little-endian header length, a JSON object of
// {name: {dtype, shape, data_offsets}}, then the data. A corrupt or truncated file is reported by name and reason
// before any tensor is read, so a bad shard never turns into garbage weights.
import { LoaderError } from '../core/errors.js';
import { dtypeByteSize, formatShape, isSafetensorsDtype, numElements, type SafetensorsDtype } from './dtypes.js';

/** The safetensors format caps the JSON header at 100 MB; larger means a corrupt length field. */
export const maxHeaderBytes = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute position of the first byte in the file (8 + header length + data_offsets[0]). */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  headerBytes: number;
  dataStart: number;
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

function corrupt(file: string, reason: string, hint?: string): LoaderError {
  return new LoaderError('DAWN_ERR_LOADER_CORRUPT_FILE', `safetensors file ${file} is corrupt: ${reason}`, { hint });
}

/** Reads the header length from the first 8 bytes; throws when it cannot fit in the file. */
export function readHeaderLength(prefix: Uint8Array, fileBytes: number, file: string): number {
  if (fileBytes < 8 || prefix.byteLength < 8) {
    throw corrupt(file, `the file is ${fileBytes} bytes, shorter than the 8-byte header length field`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(maxHeaderBytes)) {
    throw corrupt(file, `header length field says ${length} bytes, above the ${maxHeaderBytes}-byte limit`);
  }
  const n = Number(length);
  if (8 + n > fileBytes) {
    throw corrupt(file, `header length field says ${n} bytes but only ${fileBytes - 8} bytes follow it`, 'truncated?');
  }
  return n;
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates the JSON header against the file size: known dtypes, integer shapes, sizes = shape × dtype size,
 * offsets inside the data region, and no two tensors sharing bytes.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileBytes: number, file: string): SafetensorsHeader {
  const headerBytes = json.byteLength;
  const dataStart = 8 + headerBytes;
  const dataBytes = fileBytes - dataStart;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    throw corrupt(file, `header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw corrupt(file, 'header JSON is not an object');
  }
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object') throw corrupt(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    entries.push(parseEntry(name, raw, dataStart, dataBytes, file));
  }
  checkNoOverlap(entries, file);
  return { headerBytes, dataStart, entries, metadata };
}

function parseEntry(name: string, raw: unknown, dataStart: number, dataBytes: number, file: string): TensorEntry {
  const where = `tensor "${name}"`;
  if (raw === null || typeof raw !== 'object') throw corrupt(file, `${where} is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !isSafetensorsDtype(dtype)) {
    throw corrupt(
      file,
      `${where} has dtype ${JSON.stringify(dtype)}, expected one of BF16, F16, F32, F8_E4M3, U8, ...`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    throw corrupt(file, `${where} has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
    throw corrupt(file, `${where} has data_offsets ${JSON.stringify(offsets)}, expected [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw corrupt(file, `${where} has data_offsets [${begin}, ${end}] with end before begin`);
  const expected = numElements(shape) * dtypeByteSize(dtype);
  if (end - begin !== expected) {
    throw corrupt(
      file,
      `${where} ${dtype} ${formatShape(shape)} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataBytes) {
    throw corrupt(
      file,
      `${where} ends at data byte ${end} but the file holds only ${dataBytes} data bytes`,
      'the shard looks truncated; download it again',
    );
  }
  return { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin };
}

function checkNoOverlap(entries: TensorEntry[], file: string): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.byteOffset < prev.byteOffset + prev.byteLength) {
      throw corrupt(file, `tensors "${prev.name}" and "${cur.name}" overlap in the data region`);
    }
  }
}

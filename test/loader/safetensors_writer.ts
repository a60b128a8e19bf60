// Writes small safetensors files and checkpoint directories from tests, including deliberately broken ones.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dtypeByteSize, numElements, type SafetensorsDtype } from '../../loader/dtypes.js';

export interface SynthTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** Encodes a header object and a data blob as a safetensors file, padding the header to 8 bytes like the Rust crate. */
export function encodeRaw(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

export function encodeSafetensors(tensors: readonly SynthTensor[], metadata = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numElements(t.shape) * dtypeByteSize(t.dtype);
    if (t.data.byteLength !== bytes) {
      throw new Error(`test writer: ${t.name} ${t.dtype} [${t.shape}] needs ${bytes} bytes, got ${t.data.byteLength}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors) {
    data.set(t.data, offset);
    offset += t.data.byteLength;
  }
  return encodeRaw(header, data);
}

export async function makeTempDir(prefix = 'dawnllm-loader-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface CheckpointFiles {
  config?: Record<string, unknown>;
  hfQuantConfig?: Record<string, unknown>;
  tensors: readonly SynthTensor[];
  /** 1 writes model.safetensors; more writes model-0000i-of-0000n.safetensors and an index. */
  numShards?: number;
}

export function shardFileName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

export async function writeCheckpoint(dir: string, files: CheckpointFiles): Promise<string> {
  await mkdir(dir, { recursive: true });
  if (files.config) await writeFile(join(dir, 'config.json'), JSON.stringify(files.config, null, 2));
  if (files.hfQuantConfig) await writeFile(join(dir, 'hf_quant_config.json'), JSON.stringify(files.hfQuantConfig));
  const n = files.numShards ?? 1;
  if (n === 1) {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(files.tensors));
    return dir;
  }
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const part = files.tensors.filter((_, j) => j % n === i);
    const name = shardFileName(i, n);
    for (const t of part) weightMap[t.name] = name;
    await writeFile(join(dir, name), encodeSafetensors(part));
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

// Streams planned tensors into sharded safetensors files + model.safetensors.index.json: shard boundaries and
// offsets come from the sizes alone, so each file's header is written first and then every tensor chunk by chunk
// (memory stays at one chunk whatever the checkpoint's size).
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type PlannedTensor, tensorChunks } from './tensors.js';

export function shardFileName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** An upper bound of a tensor's header entry: `"name":{"dtype":"F8_E4M3","shape":[…],"data_offsets":[a,b]},`. */
function headerEntryBound(t: PlannedTensor): number {
  return t.name.length + 96 + t.shape.length * 11;
}

/** Bytes of a shard's file: header (length prefix, JSON, padding) and data. */
export function shardFileBytes(tensors: readonly PlannedTensor[]): number {
  return headerBytes(tensors).length + tensors.reduce((n, t) => n + t.bytes, 0);
}

/**
 * Splits tensors, in order, into files of at most `maxBytes` bytes, header included (one tensor over the limit is
 * an error).
 */
export function splitShards(tensors: readonly PlannedTensor[], maxBytes: number): PlannedTensor[][] {
  const shards: PlannedTensor[][] = [[]];
  const fixed = 8 + 64; // length prefix, {"__metadata__":{"format":"pt"}}, braces and padding
  let size = fixed;
  for (const t0 of tensors) {
    const cost = t0.bytes + headerEntryBound(t0);
    if (fixed + cost > maxBytes)
      throw new Error(`synthetic checkpoint: ${t0.name} has ${t0.bytes} bytes, over the ${maxBytes}-byte shard limit`);
    if (size + cost > maxBytes && shards[shards.length - 1].length) {
      shards.push([]);
      size = fixed;
    }
    shards[shards.length - 1].push(t0);
    size += cost;
  }
  return shards;
}

/** The safetensors header bytes (length prefix + JSON padded to 8 bytes, as the Rust crate writes it). */
function headerBytes(tensors: readonly PlannedTensor[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
    offset += t.bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

export interface WriteProgress {
  file: string;
  bytesWritten: number;
  totalBytes: number;
}

/** Writes the shards and the index into `dir`; returns the bytes written (headers included). */
export function writeShards(
  dir: string,
  tensors: readonly PlannedTensor[],
  opts: { seed: number; maxShardBytes: number; onProgress?: (p: WriteProgress) => void },
): number {
  const shards = splitShards(tensors, opts.maxShardBytes);
  const totalData = tensors.reduce((n, t) => n + t.bytes, 0);
  const weightMap: Record<string, string> = {};
  let written = 0;
  let dataWritten = 0;
  shards.forEach((shard, i) => {
    const file = shardFileName(i, shards.length);
    const fd = openSync(join(dir, file), 'w');
    try {
      const head = headerBytes(shard);
      writeSync(fd, head);
      written += head.length;
      for (const t of shard) {
        weightMap[t.name] = file;
        for (const chunk of tensorChunks(t, opts.seed)) {
          writeSync(fd, chunk);
          written += chunk.length;
          dataWritten += chunk.length;
          opts.onProgress?.({ file, bytesWritten: dataWritten, totalBytes: totalData });
        }
      }
    } finally {
      closeSync(fd);
    }
  });
  const index = { metadata: { total_size: totalData }, weight_map: weightMap };
  writeFileSync(join(dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return written;
}

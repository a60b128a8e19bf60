import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoaderError } from '../../core/errors.js';
import { openCheckpoint } from '../../loader/checkpoint.js';
import { dtypeByteSize, type SafetensorsDtype } from '../../loader/dtypes.js';
import { SafetensorsFile } from '../../loader/safetensors_file.js';
import {
  encodeRaw,
  encodeSafetensors,
  makeTempDir,
  type SynthTensor,
  seededBytes,
  writeCheckpoint,
} from './safetensors_writer.js';

const allDtypes: SafetensorsDtype[] = ['BF16', 'F16', 'F32', 'F8_E4M3', 'U8', 'I8', 'I32', 'I64', 'BOOL'];

function tensorOf(name: string, dtype: SafetensorsDtype, shape: number[], seed: number): SynthTensor {
  const n = shape.reduce((a, b) => a * b, 1) * dtypeByteSize(dtype);
  return { name, dtype, shape, data: seededBytes(n, seed) };
}

async function writeRaw(bytes: Uint8Array): Promise<string> {
  const path = join(await makeTempDir(), 'model.safetensors');
  await writeFile(path, bytes);
  return path;
}

async function openError(path: string): Promise<LoaderError> {
  try {
    const f = await SafetensorsFile.open(path);
    await f.close();
  } catch (err) {
    expect(err).toBeInstanceOf(LoaderError);
    return err as LoaderError;
  }
  throw new Error(`expected ${path} to be rejected`);
}

describe('safetensors reader', () => {
  it('reads every dtype by byte range, including 0-D tensors', async () => {
    const tensors = allDtypes.map((d, i) => tensorOf(`t.${d}`, d, [3, 5], i + 1));
    tensors.push(tensorOf('scalar', 'F32', [], 99));
    const path = await writeRaw(encodeSafetensors(tensors));
    const file = await SafetensorsFile.open(path);
    try {
      for (const t of tensors) {
        const e = file.entry(t.name);
        expect(e.dtype).toBe(t.dtype);
        expect(e.shape).toEqual(t.shape);
        expect(await file.read(e)).toEqual(t.data);
      }
      const e = file.entry('t.F32');
      expect(await file.readRange(e, 8, 12)).toEqual(tensors[2].data.subarray(8, 20));
      await expect(file.readRange(e, 50, 20)).rejects.toThrow(/outside tensor "t.F32"/);
    } finally {
      await file.close();
    }
  });

  it('opens sharded checkpoints through the index and a single model.safetensors', async () => {
    const tensors = [1, 2, 3, 4, 5].map((i) => tensorOf(`w${i}`, 'BF16', [2, i], i));
    const sharded = await writeCheckpoint(await makeTempDir(), { tensors, numShards: 3 });
    const ck = await openCheckpoint(sharded);
    expect(ck.files).toHaveLength(3);
    expect([...ck.tensors.keys()].sort()).toEqual(['w1', 'w2', 'w3', 'w4', 'w5']);
    expect(await ck.read(ck.tensor('w4'))).toEqual(tensors[3].data);
    await ck.close();
    const single = await writeCheckpoint(await makeTempDir(), { tensors });
    const ck1 = await openCheckpoint(single);
    expect(ck1.files.map((f) => f.fileName)).toEqual(['model.safetensors']);
    await ck1.close();
  });

  it('rejects a truncated shard, naming the file and the tensor', async () => {
    const dir = await writeCheckpoint(await makeTempDir(), {
      tensors: [tensorOf('a', 'F32', [64], 1), tensorOf('b', 'F32', [64], 2)],
      numShards: 2,
    });
    await truncate(join(dir, 'model-00002-of-00002.safetensors'), 200);
    await expect(openCheckpoint(dir)).rejects.toThrow(
      /model-00002-of-00002\.safetensors is corrupt: tensor "b" ends at data byte 256 but the file holds only/,
    );
  });

  it('rejects a file shorter than its header length field', async () => {
    const bytes = encodeSafetensors([tensorOf('a', 'F32', [4], 1)]);
    const err = await openError(await writeRaw(bytes.subarray(0, 20)));
    expect(err.message).toMatch(/model\.safetensors is corrupt: header length field says \d+ bytes but only 12/);
    expect((await openError(await writeRaw(new Uint8Array(5)))).message).toMatch(/shorter than the 8-byte/);
  });

  it('rejects offsets that overlap or lie outside the file', async () => {
    const data = new Uint8Array(32);
    const overlap = encodeRaw(
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
      },
      data,
    );
    expect((await openError(await writeRaw(overlap))).message).toMatch(/tensors "a" and "b" overlap/);
    const outside = encodeRaw({ a: { dtype: 'F32', shape: [16], data_offsets: [0, 64] } }, data);
    expect((await openError(await writeRaw(outside))).message).toMatch(/tensor "a" ends at data byte 64 .* 32 data/);
  });

  it('rejects a size that disagrees with shape × dtype, unknown dtypes and bad JSON', async () => {
    const data = new Uint8Array(32);
    const wrongSize = encodeRaw({ a: { dtype: 'BF16', shape: [4, 4], data_offsets: [0, 16] } }, data);
    expect((await openError(await writeRaw(wrongSize))).message).toMatch(
      /tensor "a" BF16 \[4, 4\] needs 32 bytes but data_offsets \[0, 16\] span 16/,
    );
    const badDtype = encodeRaw({ a: { dtype: 'Q4_K', shape: [4], data_offsets: [0, 4] } }, data);
    expect((await openError(await writeRaw(badDtype))).message).toMatch(/tensor "a" has dtype "Q4_K"/);
    const bytes = encodeRaw({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data);
    bytes[9] = 0x7b; // break the JSON
    bytes[10] = 0x7b;
    expect((await openError(await writeRaw(bytes))).message).toMatch(/header is not valid UTF-8 JSON/);
  });

  it('rejects a header length above the 100 MB limit without allocating it', async () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    expect((await openError(await writeRaw(bytes))).message).toMatch(/above the 104857600-byte limit/);
  });

  it('rejects an index that disagrees with its shards', async () => {
    const dir = await writeCheckpoint(await makeTempDir(), {
      tensors: [tensorOf('a', 'F32', [4], 1), tensorOf('b', 'F32', [4], 2)],
      numShards: 2,
    });
    const index = { weight_map: { a: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' } };
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await expect(openCheckpoint(dir)).rejects.toThrow(
      /1 listed tensors are absent from their shards: "c \(in model-00002-of-00002.safetensors\)".*1 stored tensors are not in the index: "b"/,
    );
    const gone = { weight_map: { a: 'model-00009-of-00009.safetensors' } };
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(gone));
    await expect(openCheckpoint(dir)).rejects.toThrow(/lists shard model-00009-of-00009.safetensors .* missing/);
    await expect(openCheckpoint(join(dir, 'nope'))).rejects.toThrow(/does not exist/);
  });
});

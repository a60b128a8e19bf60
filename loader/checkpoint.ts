// A checkpoint directory: one `model.safetensors`, or shards listed by `model.safetensors.index.json`. Every
// tensor of every shard is listed exactly once; the index and the shards must agree, or loading stops here.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoaderError, listSome } from '../core/errors.js';
import { SafetensorsFile } from './safetensors_file.js';
import type { TensorEntry } from './safetensors_header.js';

export const indexFileName = 'model.safetensors.index.json';
export const singleFileName = 'model.safetensors';

export interface CheckpointTensor extends TensorEntry {
  file: SafetensorsFile;
}

export class Checkpoint {
  readonly dir: string;
  readonly files: readonly SafetensorsFile[];
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;

  constructor(dir: string, files: SafetensorsFile[], tensors: Map<string, CheckpointTensor>) {
    this.dir = dir;
    this.files = files;
    this.tensors = tensors;
  }

  get totalTensorBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  tensor(name: string): CheckpointTensor {
    const t = this.tensors.get(name);
    if (!t) throw new LoaderError('DAWN_ERR_LOADER_MISSING_TENSOR', `tensor "${name}" is not in ${this.dir}`);
    return t;
  }

  read(t: CheckpointTensor): Promise<Uint8Array> {
    return t.file.read(t);
  }

  readRange(t: CheckpointTensor, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    return t.file.readRange(t, byteOffset, byteLength);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** Opens every shard and validates its header; nothing but headers is read. */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const indexPath = join(dir, indexFileName);
  if (existsSync(indexPath)) return openSharded(dir, indexPath);
  if (existsSync(join(dir, singleFileName))) {
    const file = await SafetensorsFile.open(join(dir, singleFileName));
    return new Checkpoint(dir, [file], collect([file]));
  }
  const names = existsSync(dir) ? (await readdir(dir)).filter((n) => n.endsWith('.safetensors')) : null;
  throw new LoaderError(
    'DAWN_ERR_LOADER_NO_CHECKPOINT',
    names === null
      ? `checkpoint directory ${dir} does not exist`
      : `${dir} has neither ${indexFileName} nor ${singleFileName}` +
          (names.length ? `; found ${listSome(names)}` : '; found no .safetensors files'),
    { hint: 'point dawnllm at a Hugging Face checkpoint directory' },
  );
}

async function openSharded(dir: string, indexPath: string): Promise<Checkpoint> {
  const weightMap = await readWeightMap(indexPath);
  const shardNames = [...new Set(weightMap.values())].sort();
  const files: SafetensorsFile[] = [];
  try {
    for (const name of shardNames) {
      if (!existsSync(join(dir, name))) {
        const listed = [...weightMap].filter(([, f]) => f === name).map(([t]) => t);
        throw new LoaderError(
          'DAWN_ERR_LOADER_MISSING_SHARD',
          `${indexFileName} in ${dir} lists shard ${name} (for ${listSome(listed, 3)}) but the file is missing`,
        );
      }
      files.push(await SafetensorsFile.open(join(dir, name)));
    }
    const tensors = collect(files);
    checkIndexAgrees(weightMap, tensors, indexPath);
    return new Checkpoint(dir, files, tensors);
  } catch (err) {
    await Promise.all(files.map((f) => f.close()));
    throw err;
  }
}

async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new LoaderError('DAWN_ERR_LOADER_BAD_INDEX', `${indexPath} is not valid JSON: ${(err as Error).message}`);
  }
  const map = (parsed as { weight_map?: unknown })?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new LoaderError('DAWN_ERR_LOADER_BAD_INDEX', `${indexPath} has no "weight_map" object`);
  }
  const out = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
      throw new LoaderError(
        'DAWN_ERR_LOADER_BAD_INDEX',
        `${indexPath} maps "${tensor}" to ${JSON.stringify(file)}; expected a shard file name in the same directory`,
      );
    }
    out.set(tensor, file);
  }
  return out;
}

/** Merges the shards' tensors; a name stored twice is an error naming both files. */
function collect(files: SafetensorsFile[]): Map<string, CheckpointTensor> {
  const tensors = new Map<string, CheckpointTensor>();
  for (const file of files) {
    for (const entry of file.entries.values()) {
      const prev = tensors.get(entry.name);
      if (prev) {
        throw new LoaderError(
          'DAWN_ERR_LOADER_DUPLICATE_TENSOR',
          `tensor "${entry.name}" is stored twice: in ${prev.file.fileName} and in ${file.fileName}`,
        );
      }
      tensors.set(entry.name, { ...entry, file });
    }
  }
  return tensors;
}

function checkIndexAgrees(weightMap: Map<string, string>, tensors: Map<string, CheckpointTensor>, path: string): void {
  const missing: string[] = [];
  const misplaced: string[] = [];
  for (const [name, fileName] of weightMap) {
    const t = tensors.get(name);
    if (!t) missing.push(`${name} (in ${fileName})`);
    else if (t.file.fileName !== fileName) misplaced.push(`${name} (index: ${fileName}, found in ${t.file.fileName})`);
  }
  const unlisted = [...tensors.keys()].filter((n) => !weightMap.has(n));
  const problems: string[] = [];
  if (missing.length)
    problems.push(`${missing.length} listed tensors are absent from their shards: ${listSome(missing)}`);
  if (misplaced.length) problems.push(`${misplaced.length} tensors are in another shard: ${listSome(misplaced)}`);
  if (unlisted.length) problems.push(`${unlisted.length} stored tensors are not in the index: ${listSome(unlisted)}`);
  if (problems.length) {
    throw new LoaderError('DAWN_ERR_LOADER_BAD_INDEX', `${path} disagrees with its shards: ${problems.join('; ')}`, {
      hint: 'the index or a shard is stale or truncated; download the checkpoint again',
    });
  }
}

// The tiny Qwen3-VL-MoE golden data (transformers' outputs): cases.json prompts and greedy ids, and the F32
// tensors of golden/<format>.safetensors. Shared by the CPU reference and the GPU model tests.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeFloats } from '../../loader/float_formats.js';
import { SafetensorsFile } from '../../loader/safetensors_file.js';
import { findFixture } from '../helpers/fixtures.js';

export const tinyRoot = 'qwen3vlmoe-tiny';

export interface GoldenCase {
  prompt_ids: number[];
  greedy_ids: number[];
  image: boolean;
}

/** A checkpoint directory and the golden file that matches it. */
export interface GoldenFormat {
  /** Directory under qwen3vlmoe-tiny/ (e.g. 'nvfp4-modelopt'). */
  checkpoint: string;
  /** Golden file stem (e.g. 'nvfp4'). */
  golden: string;
}

export const goldenFormats: GoldenFormat[] = [
  { checkpoint: 'bf16', golden: 'bf16' },
  { checkpoint: 'nvfp4-modelopt', golden: 'nvfp4' },
  { checkpoint: 'fp8-block', golden: 'fp8-block' },
];

export interface Golden {
  cases: Record<string, GoldenCase>;
  tensor(name: string): Promise<Float32Array>;
}

export async function readGolden(f: GoldenFormat): Promise<Golden> {
  const root = findFixture(tinyRoot);
  if (!root) throw new Error(`golden: fixture ${tinyRoot} not found`);
  const json = JSON.parse(await readFile(join(root, 'golden', 'cases.json'), 'utf8')) as {
    checkpoints: Record<string, { cases?: Record<string, GoldenCase> }>;
  };
  const cases = json.checkpoints[f.checkpoint]?.cases;
  if (!cases) throw new Error(`golden: cases.json has no cases for ${f.checkpoint}`);
  const path = join(root, 'golden', `${f.golden}.safetensors`);
  return {
    cases,
    async tensor(name) {
      const file = await SafetensorsFile.open(path);
      try {
        const e = file.entry(name);
        return decodeFloats(await file.read(e), e.dtype, name);
      } finally {
        await file.close();
      }
    },
  };
}

/** Largest |a - b| over the largest |b|: the error relative to the tensor's scale. */
export function scaledMaxError(a: ArrayLike<number>, b: ArrayLike<number>): { maxAbs: number; rel: number } {
  if (a.length !== b.length) throw new Error(`compare: length ${a.length} vs ${b.length}`);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return { maxAbs, rel: maxAbs / maxRef };
}

// The model `dawnllm serve` runs when given no MODEL: the small NVFP4 Qwen3-VL-MoE trained on arithmetic, committed
// under assets/default-model (it answers "What is 7 times 8?" with "56"). Found by walking up from this file, so
// the same code works from the source tree (models/) and from the build (dist/models/).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../core/errors.js';

/** Path of the bundled model relative to the package root. */
export const DEFAULT_MODEL_SUBDIR = join('assets', 'default-model');

/** The bundled checkpoint directory (absolute). Throws ModelError when the package was installed without it. */
export function defaultModelDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  const tried: string[] = [];
  for (let dir = from, depth = 0; depth < 4; depth++) {
    const candidate = join(dir, DEFAULT_MODEL_SUBDIR);
    if (existsSync(join(candidate, 'config.json'))) return candidate;
    tried.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ModelError(
    'DAWN_ERR_MODEL_DEFAULT_MISSING',
    `the bundled default model was not found (looked in ${tried.join(', ')})`,
    { hint: 'pass a checkpoint directory as MODEL, or reinstall the package with its assets/ folder' },
  );
}

/** The bundled model's held-out task files (arith-gen.jsonl, arith-mc.jsonl) and transformers' reference scores. */
export function bundledTasksDir(): string {
  return join(dirname(defaultModelDir()), 'tasks');
}

// Where `serve` gets its model runner. The default factory loads the GPU runner of the checkpoint's architecture
// (models/qwen3_vl_moe/runner.ts, built in the model issue); tests and tools pass their own factory (the CPU fake
// runner) instead. The factory reports what it loaded, so serve can print the format and load summary.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../core/errors.js';
import type { ServableRunner } from './media/runner_multimodal.js';

export interface RunnerLoadOptions {
  /** Checkpoint directory. */
  modelDir: string;
  /** --max-model-len; null: the model's own limit. */
  maxModelLen: number | null;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Fraction of device memory the weights + KV cache may take (sizes the KV pool). */
  gpuMemoryUtilization: number;
  /** --dtype: 'auto' | 'bfloat16' | 'float16' | 'float32'. */
  dtype: string;
  /** --quantization: 'auto' (detect from the checkpoint) or a scheme name to insist on. */
  quantization: string;
  /** --kv-cache-dtype: 'auto' | 'fp8'. */
  kvCacheDtype: string;
  /** --device: adapter name substring; null: the default adapter. */
  device: string | null;
  /** --limit-mm-per-prompt's image count; 0: serve text only (no vision tower, no memory reserved for it). */
  imagesPerPrompt?: number;
  /** --mm-processor-kwargs (vLLM's): image resize bounds that replace preprocessor_config.json's. */
  mmProcessorKwargs?: { minPixels?: number; maxPixels?: number };
  /** Progress lines (load progress, the adapter line). */
  onProgress?: (line: string) => void;
}

export interface LoadedRunner {
  /** With a `multimodal` property when the model takes images (server/media/runner_multimodal.ts). */
  runner: ServableRunner;
  /** The weight format found, e.g. "nvfp4 (modelopt)". */
  format: string;
  /** A few lines summing up the load report (tensors consumed / ignored, bytes per format). */
  loadSummary: readonly string[];
}

export type RunnerFactory = (options: RunnerLoadOptions) => Promise<LoadedRunner>;

/** The module the default factory loads, and the function it calls there. */
export const defaultRunnerModule = '../models/qwen3_vl_moe/runner.js';
export const defaultRunnerExport = 'loadRunner';

/** A factory that imports `specifier` (relative to this file) and calls its `exportName`(options). */
export function moduleRunnerFactory(specifier: string, exportName: string): RunnerFactory {
  const file = fileURLToPath(new URL(specifier, import.meta.url));
  // The source tree runs .ts through tsx; the build has .js.
  const where = relative(process.cwd(), file).replace(/\.js$/, '.ts');
  const tail = specifier.replace(/^(\.\.?\/)+/, '').replace(/\.js$/, '');
  return async (options) => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifier)) as Record<string, unknown>;
    } catch (err) {
      // The module itself is missing (not one it imports): the message names it.
      const isThisModule =
        /ERR_MODULE_NOT_FOUND|Cannot find module/.test(
          `${(err as { code?: string }).code} ${(err as Error).message}`,
        ) && String((err as Error).message).includes(tail);
      if (!isThisModule) throw err;
      throw new ModelError(
        'DAWN_ERR_MODEL_RUNNER_MISSING',
        `serve: the GPU model runner (${where}) is not part of this build, so ${options.modelDir} cannot be served`,
        { hint: 'the model runner lands with the model issue; until then only the fake runner (tests) can serve' },
      );
    }
    const load = mod[exportName];
    if (typeof load !== 'function')
      throw new ModelError(
        'DAWN_ERR_MODEL_RUNNER_MISSING',
        `serve: ${where} has no ${exportName}(options) export; found ${Object.keys(mod).join(', ') || 'no exports'}`,
      );
    return (load as RunnerFactory)(options);
  };
}

/** Loads the GPU runner from models/qwen3_vl_moe/runner.ts; a clear error while that module does not exist. */
export const defaultRunnerFactory: RunnerFactory = moduleRunnerFactory(defaultRunnerModule, defaultRunnerExport);

// Reads the small JSON files that sit beside a checkpoint (tokenizer.json, tokenizer_config.json,
// generation_config.json) with errors that name the file and say what is wrong with it.
import { existsSync, readFileSync } from 'node:fs';
import { ModelError } from '../../core/errors.js';

export type JsonObject = Record<string, unknown>;

/** The parsed top-level object of `path`; `what` says what the file is for, for the error message. */
export function readJsonObject(path: string, what: string): JsonObject {
  if (!existsSync(path)) {
    throw new ModelError('DAWN_ERR_MODEL_FILE_MISSING', `${what}: ${path} does not exist`, {
      hint: 'a Hugging Face checkpoint directory keeps it beside config.json',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelError(
      'DAWN_ERR_MODEL_FILE_INVALID',
      `${what}: ${path} is not valid JSON (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelError(
      'DAWN_ERR_MODEL_FILE_INVALID',
      `${what}: ${path} should hold a JSON object, found ${jsonKind(parsed)}`,
    );
  }
  return parsed as JsonObject;
}

/** Like readJsonObject, but null when the file is absent (for optional files). */
export function readOptionalJsonObject(path: string, what: string): JsonObject | null {
  return existsSync(path) ? readJsonObject(path, what) : null;
}

/** 'null', 'array', 'string', ... for messages that say what was found. */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

// The checkpoint's generation_config.json and what vLLM makes of it (--generation-config):
// - 'auto' (default): its temperature / top_p / top_k / min_p / repetition_penalty / max_new_tokens become the
//   defaults for requests that do not set them (over OpenAI's neutral ones);
// - 'vllm': those are ignored, the neutral defaults apply;
// - a directory: its generation_config.json is read instead of the model's.
// In every mode eos_token_id (an int or a list) still stops generation, together with the tokenizer's eos.
// --override-generation-config (HF field names) is applied on top, in every mode, as vLLM does.
import { join } from 'node:path';
import { EngineError, ModelError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { type JsonObject, jsonKind, readJsonObject, readOptionalJsonObject } from '../models/common/read_json.js';

export type GenerationConfigMode = 'auto' | 'vllm' | (string & {});

export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** generation_config's max_new_tokens: caps every request's max_tokens. */
  maxTokens?: number;
}

export interface GenerationConfig {
  /** The file read, or null when there was none. */
  path: string | null;
  /** generation_config's eos_token_id as a list (empty when unset). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  /** The defaults requests fall back to; {} in 'vllm' mode (overrides aside). */
  samplingDefaults: SamplingDefaults;
}

/** vLLM's defaults when neither the request nor the model sets a value. topK 0 = no top-k. */
export const neutralSampling = { temperature: 1, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 } as const;

const log = logger('generation_config');

export function loadGenerationConfig(
  modelDir: string,
  options: { mode?: GenerationConfigMode; overrides?: JsonObject } = {},
): GenerationConfig {
  const mode = options.mode ?? 'auto';
  const explicitDir = mode !== 'auto' && mode !== 'vllm';
  const path = join(explicitDir ? mode : modelDir, 'generation_config.json');
  const file = explicitDir
    ? readJsonObject(path, '--generation-config')
    : readOptionalJsonObject(path, 'generation config');
  const fields = file ?? {};
  const samplingDefaults = {
    ...(mode === 'vllm' ? {} : parseSamplingDefaults(fields, path)),
    ...parseSamplingDefaults(options.overrides ?? {}, '--override-generation-config'),
  };
  if (Object.keys(samplingDefaults).length > 0) {
    log.info(
      `default sampling from ${file && mode !== 'vllm' ? path : '--override-generation-config'}: ${JSON.stringify(samplingDefaults)} ` +
        `(requests that set a value keep theirs; --generation-config vllm ignores the model's)`,
    );
  }
  return {
    path: file ? path : null,
    eosTokenIds: parseTokenIds(fields.eos_token_id, 'eos_token_id', path),
    bosTokenId: parseTokenIds(fields.bos_token_id, 'bos_token_id', path)[0] ?? null,
    padTokenId: parseTokenIds(fields.pad_token_id, 'pad_token_id', path)[0] ?? null,
    samplingDefaults,
  };
}

/** The ids that end generation as EOS: the tokenizer's eos first, then generation_config's (no duplicates). */
export function eosTokenIdsOf(tokenizerEosId: number | null, config: GenerationConfig): number[] {
  return [...new Set([...(tokenizerEosId === null ? [] : [tokenizerEosId]), ...config.eosTokenIds])];
}

export interface RequestSampling {
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  minP?: number | null;
  repetitionPenalty?: number | null;
}

/** The request's value where it set one, else the model's default, else the neutral one. */
export function resolveSampling(
  request: RequestSampling,
  defaults: SamplingDefaults,
): Required<{ [K in keyof RequestSampling]: number }> {
  return {
    temperature: request.temperature ?? defaults.temperature ?? neutralSampling.temperature,
    topP: request.topP ?? defaults.topP ?? neutralSampling.topP,
    topK: request.topK ?? defaults.topK ?? neutralSampling.topK,
    minP: request.minP ?? defaults.minP ?? neutralSampling.minP,
    repetitionPenalty: request.repetitionPenalty ?? defaults.repetitionPenalty ?? neutralSampling.repetitionPenalty,
  };
}

/** vLLM's get_max_tokens: the smallest of the request's max_tokens, the room left in the context, and max_new_tokens. */
export function resolveMaxTokens(args: {
  requested?: number | null;
  maxModelLen: number;
  numPromptTokens: number;
  defaults: SamplingDefaults;
}): number {
  const room = args.maxModelLen - args.numPromptTokens;
  if (room < 1) {
    throw new EngineError(
      'DAWN_ERR_ENGINE_PROMPT_TOO_LONG',
      `the prompt has ${args.numPromptTokens} tokens, which leaves no room to generate within max_model_len ${args.maxModelLen}`,
    );
  }
  return Math.min(room, args.requested ?? Infinity, args.defaults.maxTokens ?? Infinity);
}

// HF field name → our name, and whether it must be an integer.
const samplingFields: [string, keyof SamplingDefaults, 'number' | 'integer'][] = [
  ['temperature', 'temperature', 'number'],
  ['top_p', 'topP', 'number'],
  ['top_k', 'topK', 'integer'],
  ['min_p', 'minP', 'number'],
  ['repetition_penalty', 'repetitionPenalty', 'number'],
  ['max_new_tokens', 'maxTokens', 'integer'],
];

function parseSamplingDefaults(fields: JsonObject, where: string): SamplingDefaults {
  const out: SamplingDefaults = {};
  for (const [hfName, name, kind] of samplingFields) {
    const value = fields[hfName];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || (kind === 'integer' && !Number.isInteger(value))) {
      throw new ModelError(
        'DAWN_ERR_MODEL_GENERATION_CONFIG_INVALID',
        `${where}: ${hfName} should be ${kind === 'integer' ? 'an integer' : 'a number'}, found ${JSON.stringify(value)}`,
      );
    }
    out[name] = value;
  }
  return out;
}

// HF writes a token id as an int, a list of ints, or null.
function parseTokenIds(value: unknown, field: string, path: string): number[] {
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  const bad = ids.find((id) => !Number.isInteger(id) || (id as number) < 0);
  if (bad !== undefined) {
    throw new ModelError(
      'DAWN_ERR_MODEL_GENERATION_CONFIG_INVALID',
      `${path}: ${field} should be a token id or a list of token ids, found ${jsonKind(bad)} ${JSON.stringify(bad)}`,
    );
  }
  return ids as number[];
}

// Sampling parameters: checked once, when a request arrives, with vLLM's messages (the wire name of the field, what
// was expected, what was found), so nothing downstream re-validates. Names are camelCase here; the server maps the
// OpenAI snake_case fields onto SamplingParamsInput and the errors carry the snake_case `param` back.
import { ApiError } from '../core/errors.js';

/** The most top logprobs a request may ask for (vLLM's default max_logprobs, OpenAI's top_logprobs limit). */
export const MAX_LOGPROBS = 20;

export interface SamplingParams {
  /** Completions per request (sibling sequences sharing the prompt). */
  readonly n: number;
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP: number;
  /** null: no top-k cut. */
  readonly topK: number | null;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** null: the engine draws one per sequence (recorded, so a recompute after preemption samples the same). */
  readonly seed: number | null;
  /** null: generate until the context is full. */
  readonly maxTokens: number | null;
  readonly minTokens: number;
  readonly stop: readonly string[];
  readonly stopTokenIds: readonly number[];
  readonly includeStopStrInOutput: boolean;
  readonly ignoreEos: boolean;
  readonly skipSpecialTokens: boolean;
  /** Top logprobs per sampled token; 0 = only the sampled token's; null = none. */
  readonly logprobs: number | null;
  /** Top logprobs per prompt token; null = none. */
  readonly promptLogprobs: number | null;
}

/** What a caller may give: any field may be missing (then `defaults`, then the built-in default applies). */
export type SamplingParamsInput = {
  readonly [K in keyof SamplingParams]?: K extends 'stop' ? string | readonly string[] | null : SamplingParams[K];
};

const BUILT_IN: SamplingParams = {
  n: 1,
  temperature: 1,
  topP: 1,
  topK: null,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  seed: null,
  maxTokens: null,
  minTokens: 0,
  stop: [],
  stopTokenIds: [],
  includeStopStrInOutput: false,
  ignoreEos: false,
  skipSpecialTokens: true,
  logprobs: null,
  promptLogprobs: null,
};

/** The OpenAI / vLLM wire name of each field, for messages and ApiError.param. */
const WIRE_NAME: Record<keyof SamplingParams, string> = {
  n: 'n',
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  repetitionPenalty: 'repetition_penalty',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  seed: 'seed',
  maxTokens: 'max_tokens',
  minTokens: 'min_tokens',
  stop: 'stop',
  stopTokenIds: 'stop_token_ids',
  includeStopStrInOutput: 'include_stop_str_in_output',
  ignoreEos: 'ignore_eos',
  skipSpecialTokens: 'skip_special_tokens',
  logprobs: 'logprobs',
  promptLogprobs: 'prompt_logprobs',
};

/** Builds checked parameters from `input`, filling gaps from `defaults` (e.g. the model's generation_config). */
export function createSamplingParams(input: SamplingParamsInput, defaults: SamplingParamsInput = {}): SamplingParams {
  const pick = <K extends keyof SamplingParams>(key: K) => input[key] ?? defaults[key] ?? BUILT_IN[key];
  const stop = pick('stop');
  // top_k: vLLM quietly accepts -1 and 0 as "disabled"; inside, disabled is null.
  const topK = pick('topK');
  const params: SamplingParams = {
    n: checkInt('n', pick('n'), 1),
    temperature: checkTemperature(pick('temperature')),
    topP: checkRange('topP', pick('topP'), 0, 1, '(0, 1]', (v) => v > 0 && v <= 1),
    topK: topK === null || topK === -1 || topK === 0 ? null : checkTopK(topK),
    minP: checkRange('minP', pick('minP'), 0, 1, '[0, 1]', (v) => v >= 0 && v <= 1),
    repetitionPenalty: checkPositive('repetitionPenalty', pick('repetitionPenalty')),
    presencePenalty: checkRange('presencePenalty', pick('presencePenalty'), -2, 2, '[-2, 2]'),
    frequencyPenalty: checkRange('frequencyPenalty', pick('frequencyPenalty'), -2, 2, '[-2, 2]'),
    seed: nullable(pick('seed'), (v) => checkInt('seed', v, Number.MIN_SAFE_INTEGER)),
    maxTokens: nullable(pick('maxTokens'), (v) => checkInt('maxTokens', v, 1)),
    minTokens: checkInt('minTokens', pick('minTokens'), 0),
    stop: checkStop(typeof stop === 'string' ? [stop] : (stop ?? [])),
    stopTokenIds: checkStopTokenIds(pick('stopTokenIds')),
    includeStopStrInOutput: checkBool('includeStopStrInOutput', pick('includeStopStrInOutput')),
    ignoreEos: checkBool('ignoreEos', pick('ignoreEos')),
    skipSpecialTokens: checkBool('skipSpecialTokens', pick('skipSpecialTokens')),
    logprobs: nullable(pick('logprobs'), (v) => checkLogprobs('logprobs', v)),
    promptLogprobs: nullable(pick('promptLogprobs'), (v) => checkLogprobs('promptLogprobs', v)),
  };
  if (params.maxTokens !== null && params.minTokens > params.maxTokens)
    fail('minTokens', `must be less than or equal to max_tokens=${params.maxTokens}, got ${params.minTokens}`);
  if (params.temperature === 0 && params.n > 1) fail('n', `must be 1 when using greedy sampling, got ${params.n}`);
  return params;
}

/** True when sampling takes the argmax (no randomness, so `n` must be 1 and the seed does not matter). */
export function isGreedy(params: SamplingParams): boolean {
  return params.temperature === 0;
}

function fail(key: keyof SamplingParams, rest: string): never {
  const param = WIRE_NAME[key];
  throw new ApiError(400, 'DAWN_ERR_API_INVALID_PARAM', `${param} ${rest}`, { param });
}

/** Python-style float text, as vLLM prints it: -1 → "-1.0". */
function formatFloat(v: unknown): string {
  return typeof v === 'number' && Number.isInteger(v) ? v.toFixed(1) : String(v);
}

function checkNumber(key: keyof SamplingParams, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a finite number, got ${formatFloat(v)}`);
  return v;
}

function checkTemperature(v: unknown): number {
  const t = checkNumber('temperature', v);
  if (t < 0) fail('temperature', `must be non-negative, got ${formatFloat(t)}`);
  if (t > 2) fail('temperature', `must be in [0, 2], got ${formatFloat(t)}`);
  return t;
}

function checkRange(
  key: keyof SamplingParams,
  v: unknown,
  lo: number,
  hi: number,
  interval: string,
  isInside: (v: number) => boolean = (x) => x >= lo && x <= hi,
): number {
  const x = checkNumber(key, v);
  if (!isInside(x)) fail(key, `must be in ${interval}, got ${formatFloat(x)}`);
  return x;
}

function checkPositive(key: keyof SamplingParams, v: unknown): number {
  const x = checkNumber(key, v);
  if (x <= 0) fail(key, `must be greater than zero, got ${formatFloat(x)}`);
  return x;
}

function checkInt(key: keyof SamplingParams, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    const bound = min === Number.MIN_SAFE_INTEGER ? '' : ` ≥ ${min}`;
    fail(key, `must be an integer${bound}, got ${String(v)}`);
  }
  return v;
}

function checkTopK(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    fail('topK', `must be 0 (disable), or at least 1, got ${String(v)}`);
  return v;
}

function checkLogprobs(key: keyof SamplingParams, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_LOGPROBS)
    fail(key, `must be an integer in [0, ${MAX_LOGPROBS}], got ${String(v)}`);
  return v;
}

function checkBool(key: keyof SamplingParams, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(key, `must be a boolean, got ${String(v)}`);
  return v;
}

function checkStop(stop: readonly unknown[]): readonly string[] {
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string'))
    fail('stop', `must be a string or a list of strings, got ${JSON.stringify(stop)}`);
  if (stop.some((s) => s === '')) fail('stop', 'cannot contain an empty string');
  return [...new Set(stop as string[])];
}

function checkStopTokenIds(ids: unknown): readonly number[] {
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0))
    fail('stopTokenIds', `must contain only non-negative integers, got ${JSON.stringify(ids)}`);
  return [...new Set(ids as number[])];
}

function nullable<T>(v: T | null, check: (v: T) => T): T | null {
  return v === null ? null : check(v);
}

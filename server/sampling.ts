// Wire fields (snake_case) → SamplingParams, with the defaults chain vLLM uses: the request's value, else the
// model's generation_config.json (unless --generation-config vllm), else the built-in OpenAI defaults. Range
// checks and their 400 messages live in engine/sampling_params.ts.
import { ApiError } from '../core/errors.js';
import { createSamplingParams, type SamplingParams, type SamplingParamsInput } from '../engine/sampling_params.js';
import type { ServingModel } from './serving_model.js';

export interface WireSampling {
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  include_stop_str_in_output?: boolean | null;
  skip_special_tokens?: boolean | null;
}

export interface LogprobRequest {
  /** Top logprobs per output token (null: none). */
  logprobs: number | null;
  /** Top logprobs per prompt token (null: none). */
  promptLogprobs: number | null;
}

/** vLLM refuses stream_options on a request that does not stream. */
export function checkStreamOptions(body: { stream?: boolean | null; stream_options?: unknown }): void {
  if (body.stream_options !== undefined && body.stream_options !== null && body.stream !== true)
    throw new ApiError(400, 'DAWN_ERR_API_INVALID_PARAM', 'Stream options can only be defined when `stream=True`.', {
      param: 'stream_options',
    });
}

/** `maxTokens` is the request's (already resolved by the endpoint's own default rule); null = fill the context. */
export function toSamplingParams(
  model: ServingModel,
  wire: WireSampling,
  maxTokens: number | null,
  logprobs: LogprobRequest,
): SamplingParams {
  const input: SamplingParamsInput = {
    n: wire.n ?? undefined,
    temperature: wire.temperature ?? undefined,
    topP: wire.top_p ?? undefined,
    topK: wire.top_k ?? undefined,
    minP: wire.min_p ?? undefined,
    repetitionPenalty: wire.repetition_penalty ?? undefined,
    presencePenalty: wire.presence_penalty ?? undefined,
    frequencyPenalty: wire.frequency_penalty ?? undefined,
    seed: wire.seed ?? undefined,
    maxTokens: capByGenerationConfig(model, maxTokens),
    minTokens: wire.min_tokens ?? undefined,
    stop: wire.stop ?? undefined,
    stopTokenIds: wire.stop_token_ids ?? undefined,
    includeStopStrInOutput: wire.include_stop_str_in_output ?? undefined,
    ignoreEos: wire.ignore_eos ?? undefined,
    skipSpecialTokens: wire.skip_special_tokens ?? undefined,
    logprobs: logprobs.logprobs,
    promptLogprobs: logprobs.promptLogprobs,
  };
  return createSamplingParams(input, model.samplingDefaults);
}

// generation_config's max_new_tokens caps max_tokens (vLLM's get_max_tokens); a request that leaves max_tokens
// unset then gets max_new_tokens. The engine still checks prompt + max_tokens against the context.
function capByGenerationConfig(model: ServingModel, maxTokens: number | null): number | null {
  if (model.maxNewTokens === null) return maxTokens;
  return maxTokens === null ? model.maxNewTokens : Math.min(maxTokens, model.maxNewTokens);
}

import { describe, expect, it } from 'vitest';
import { ApiError } from '../../core/errors.js';
import { createSamplingParams, type SamplingParamsInput } from '../../engine/sampling_params.js';

function rejection(input: SamplingParamsInput): ApiError {
  try {
    createSamplingParams(input);
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('createSamplingParams', () => {
  it('fills defaults, then generation_config defaults, then the request', () => {
    const p = createSamplingParams({ temperature: 0.7 }, { temperature: 0.6, topP: 0.95, topK: 20 });
    expect(p).toMatchObject({ n: 1, temperature: 0.7, topP: 0.95, topK: 20, minP: 0, maxTokens: null, seed: null });
    expect(p.stop).toEqual([]);
  });

  it('normalizes: a stop string becomes a list, duplicates go, top_k -1 and 0 mean disabled (null)', () => {
    expect(createSamplingParams({ stop: 'END' }).stop).toEqual(['END']);
    expect(createSamplingParams({ stopTokenIds: [5, 5, 6] }).stopTokenIds).toEqual([5, 6]);
    expect(createSamplingParams({ topK: -1 }).topK).toBeNull();
    expect(createSamplingParams({ topK: 0 }).topK).toBeNull();
  });

  it.each<[SamplingParamsInput, string, string]>([
    [{ temperature: -1 }, 'temperature', 'temperature must be non-negative, got -1.0'],
    [{ temperature: 2.5 }, 'temperature', 'temperature must be in [0, 2], got 2.5'],
    [{ temperature: Number.NaN }, 'temperature', 'temperature must be a finite number, got NaN'],
    [{ topP: 0 }, 'top_p', 'top_p must be in (0, 1], got 0.0'],
    [{ topP: 1.5 }, 'top_p', 'top_p must be in (0, 1], got 1.5'],
    [{ topK: -3 }, 'top_k', 'top_k must be 0 (disable), or at least 1, got -3'],
    [{ topK: 2.5 }, 'top_k', 'top_k must be 0 (disable), or at least 1, got 2.5'],
    [{ minP: 1.2 }, 'min_p', 'min_p must be in [0, 1], got 1.2'],
    [{ presencePenalty: 3 }, 'presence_penalty', 'presence_penalty must be in [-2, 2], got 3.0'],
    [{ frequencyPenalty: -2.5 }, 'frequency_penalty', 'frequency_penalty must be in [-2, 2], got -2.5'],
    [{ repetitionPenalty: 0 }, 'repetition_penalty', 'repetition_penalty must be greater than zero, got 0.0'],
    [{ maxTokens: -3 }, 'max_tokens', 'max_tokens must be an integer ≥ 1, got -3'],
    [{ maxTokens: 1.5 }, 'max_tokens', 'max_tokens must be an integer ≥ 1, got 1.5'],
    [{ minTokens: -1 }, 'min_tokens', 'min_tokens must be an integer ≥ 0, got -1'],
    [{ minTokens: 9, maxTokens: 4 }, 'min_tokens', 'min_tokens must be less than or equal to max_tokens=4, got 9'],
    [{ n: 0 }, 'n', 'n must be an integer ≥ 1, got 0'],
    [{ n: 2, temperature: 0 }, 'n', 'n must be 1 when using greedy sampling, got 2'],
    [{ seed: 0.5 }, 'seed', 'seed must be an integer, got 0.5'],
    [{ logprobs: 21 }, 'logprobs', 'logprobs must be an integer in [0, 20], got 21'],
    [{ promptLogprobs: -1 }, 'prompt_logprobs', 'prompt_logprobs must be an integer in [0, 20], got -1'],
    [{ stop: ['a', ''] }, 'stop', 'stop cannot contain an empty string'],
    [{ stopTokenIds: [1, -2] }, 'stop_token_ids', 'stop_token_ids must contain only non-negative integers, got [1,-2]'],
  ])('rejects %j: 400 on %s', (input, param, message) => {
    const e = rejection(input);
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toBe(message);
  });

  it('rejects values of the wrong type that slipped past the schema', () => {
    expect(rejection({ ignoreEos: 'yes' as unknown as boolean }).message).toBe('ignore_eos must be a boolean, got yes');
  });
});

// Checks on a request as a whole (its sampling params were checked when they were made): the prompt's token ids,
// its image spans, and whether prompt + output fit in the context. Errors are 400s naming the field.
import { ApiError } from '../core/errors.js';
import type { EngineRequest } from './request.js';

/** Returns the number of output tokens the request may produce (max_tokens, or what the context leaves). */
export function validateRequest(request: EngineRequest, maxModelLen: number, vocabSize: number): number {
  const prompt = request.promptTokenIds;
  if (prompt.length === 0) invalid('prompt', 'prompt must contain at least one token, got 0');
  const bad = prompt.findIndex((t) => !Number.isSafeInteger(t) || t < 0 || t >= vocabSize);
  if (bad >= 0)
    invalid(
      'prompt',
      `prompt token ${bad} is ${prompt[bad]}, expected an integer in [0, ${vocabSize}) (the vocabulary)`,
    );
  // Spans in prompt order and disjoint: the runner places each image's rows and the M-RoPE positions by walking
  // them in order.
  let prevEnd = 0;
  for (const [i, mm] of (request.mmInputs ?? []).entries()) {
    const end = mm.tokenStart + mm.numTokens;
    if (
      !Number.isSafeInteger(mm.tokenStart) ||
      !Number.isSafeInteger(mm.numTokens) ||
      mm.tokenStart < 0 ||
      mm.numTokens < 1 ||
      end > prompt.length
    )
      invalid(
        'messages',
        `image ${i} covers prompt tokens [${mm.tokenStart}, ${end}), expected a non-empty span inside [0, ${prompt.length})`,
      );
    if (mm.tokenStart < prevEnd)
      invalid(
        'messages',
        `image ${i} starts at prompt token ${mm.tokenStart}, inside or before image ${i - 1} (which ends at ${prevEnd}); expected disjoint spans in prompt order`,
      );
    prevEnd = end;
  }
  const requested = request.params.maxTokens;
  const maxTokens = requested ?? maxModelLen - prompt.length;
  if (prompt.length + Math.max(maxTokens, 1) > maxModelLen) {
    const completion = requested === null ? '' : `, ${requested} in the completion`;
    invalid(
      requested === null ? 'prompt' : 'max_tokens',
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
        `${prompt.length + (requested ?? 1)} tokens (${prompt.length} in the messages${completion}). ` +
        'Please reduce the length of the messages or completion.',
    );
  }
  return maxTokens;
}

function invalid(param: string, message: string): never {
  throw new ApiError(400, 'DAWN_ERR_API_INVALID_REQUEST', message, { param });
}

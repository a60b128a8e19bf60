// POST /v1/chat/completions: render the messages with the model's chat template, generate, and answer as one
// chat.completion or as chat.completion.chunk events (the role chunk goes out with a choice's first token).
import type { FastifyReply } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { ChatMessage, ChatTool } from '../../models/common/chat_messages.js';
import { applyChatTemplate } from '../../models/common/chat_template.js';
import { collectGeneration, type Generation, type ServerContext, startGeneration } from '../generation.js';
import { chatMediaParts } from '../media/chat_media.js';
import { prepareChatImages } from '../media/image_inputs.js';
import { LogprobFormatter } from '../logprobs.js';
import { checkStreamOptions, toSamplingParams } from '../sampling.js';
import { ChatCompletionBody } from '../schemas.js';
import type { ServingModel } from '../serving_model.js';
import { sendSse } from '../sse.js';
import { type App, checkModelName, newRequestId, nowS, wireUsage } from './common.js';

export function registerChatCompletions(app: App, ctx: ServerContext): void {
  app.post('/v1/chat/completions', { schema: { body: ChatCompletionBody } }, async (request, reply) => {
    const arrivalMs = performance.now();
    const body = request.body;
    const modelName = checkModelName(ctx.host, body.model);
    const model = ctx.host.require();
    checkStreamOptions(body);
    const rendered = applyChatTemplate(model.tokenizer, model.chatTemplate, body.messages as ChatMessage[], {
      addGenerationPrompt: body.add_generation_prompt ?? undefined,
      continueFinalMessage: body.continue_final_message ?? undefined,
      tools: (body.tools ?? null) as ChatTool[] | null,
      chatTemplateKwargs: (body.chat_template_kwargs ?? undefined) as Record<string, unknown> | undefined,
    });
    if (!body.logprobs && (body.top_logprobs ?? 0) > 0)
      throw new ApiError(
        400,
        'DAWN_ERR_API_INVALID_PARAM',
        'when using `top_logprobs`, `logprobs` must be set to true',
        {
          param: 'top_logprobs',
        },
      );
    const params = toSamplingParams(model, body, body.max_completion_tokens ?? body.max_tokens ?? null, {
      logprobs: body.logprobs ? (body.top_logprobs ?? 0) : null,
      promptLogprobs: null,
    });
    // Images: checked against the limits, loaded, preprocessed, their pads expanded (a 400 names the part at fault).
    const { promptIds, mmInputs } = await prepareChatImages(
      rendered.promptIds,
      rendered.media,
      chatMediaParts(body.messages as ChatMessage[]),
      model.multimodal,
      ctx.media,
      ctx.metrics,
    );
    const requestId = newRequestId('chatcmpl');
    const gen = startGeneration(
      ctx,
      model,
      { request, reply },
      {
        requestId,
        promptTokenIds: promptIds,
        ...(mmInputs.length > 0 ? { mmInputs } : {}),
        params,
        arrivalMs,
      },
    );
    const response = { id: requestId, modelName, created: nowS(), returnTokenIds: body.return_token_ids === true };
    if (body.stream === true)
      return streamChat(reply, model, gen, response, body.stream_options?.include_usage === true, promptIds);
    const { seqs, done } = await collectGeneration(gen);
    const formatter = new LogprobFormatter(model.tokenizer);
    return {
      id: requestId,
      object: 'chat.completion',
      created: response.created,
      model: modelName,
      choices: seqs.map((seq) => ({
        index: seq.index,
        message: { role: 'assistant', content: seq.text, tool_calls: [] },
        logprobs: params.logprobs === null ? null : { content: formatter.chat(seq.logprobs) },
        finish_reason: seq.finishReason,
        stop_reason: seq.stopReason,
        ...(response.returnTokenIds ? { token_ids: seq.tokenIds } : {}),
      })),
      usage: wireUsage([done.usage]),
      ...(response.returnTokenIds ? { prompt_token_ids: promptIds } : {}),
    };
  });
}

interface ResponseHead {
  id: string;
  modelName: string;
  created: number;
  returnTokenIds: boolean;
}

function streamChat(
  reply: FastifyReply,
  model: ServingModel,
  gen: Generation,
  head: ResponseHead,
  includeUsage: boolean,
  promptIds: readonly number[],
): FastifyReply {
  const formatter = new LogprobFormatter(model.tokenizer);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id: head.id,
    object: 'chat.completion.chunk',
    created: head.created,
    model: head.modelName,
    choices,
    ...extra,
  });
  return sendSse(reply, async function* () {
    const hasStarted = new Set<number>();
    for await (const event of gen.events()) {
      if (event.type === 'done') {
        if (includeUsage) yield chunk([], { usage: wireUsage([event.usage]) });
        continue;
      }
      if (!hasStarted.has(event.index)) {
        const first = hasStarted.size === 0 && head.returnTokenIds ? { prompt_token_ids: promptIds } : {};
        hasStarted.add(event.index);
        const delta = { role: 'assistant', content: '' };
        yield chunk([{ index: event.index, delta, logprobs: null, finish_reason: null }], first);
      }
      const hasLogprobs = event.logprobs !== null && event.logprobs.length > 0;
      if (event.textDelta === '' && event.finishReason === null && !hasLogprobs) continue;
      yield chunk([
        {
          index: event.index,
          delta: event.textDelta === '' ? {} : { content: event.textDelta },
          logprobs: event.logprobs === null ? null : { content: formatter.chat(event.logprobs) },
          finish_reason: event.finishReason,
          stop_reason: event.stopReason,
          ...(head.returnTokenIds ? { token_ids: event.tokenIds } : {}),
        },
      ]);
    }
  });
}

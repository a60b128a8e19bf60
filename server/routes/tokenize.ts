// POST /tokenize and POST /detokenize, as vLLM: a prompt (or chat messages, rendered with the chat template)
// to token ids with the count and max_model_len (images count as the tokens they expand to); token ids back to text.
import { ApiError } from '../../core/errors.js';
import type { ChatMessage, ChatTool } from '../../models/common/chat_messages.js';
import type { ServerContext } from '../generation.js';
import { chatMediaParts } from '../media/chat_media.js';
import { prepareChatImages } from '../media/image_inputs.js';
import { DetokenizeBody, TokenizeBody } from '../schemas.js';
import { type App, checkModelName } from './common.js';

export function registerTokenize(app: App, ctx: ServerContext): void {
  app.post('/tokenize', { schema: { body: TokenizeBody } }, async (request) => {
    const body = request.body;
    checkModelName(ctx.host, body.model);
    const model = ctx.host.require();
    const { tokenizer } = model;
    let tokens: number[];
    if ('messages' in body) {
      const rendered = model.chatTemplate.render(body.messages as ChatMessage[], {
        addGenerationPrompt: body.add_generation_prompt ?? undefined,
        continueFinalMessage: body.continue_final_message ?? undefined,
        tools: (body.tools ?? null) as ChatTool[] | null,
        chatTemplateKwargs: (body.chat_template_kwargs ?? undefined) as Record<string, unknown> | undefined,
      });
      // The template wrote the special tokens already (vLLM's default for chat: add_special_tokens false).
      tokens = tokenizer.encode(rendered.prompt, { addSpecialTokens: body.add_special_tokens ?? false });
      // Images count as the tokens they expand to, as in the chat request (vLLM runs its processor here too).
      const messages = body.messages as ChatMessage[];
      const media = chatMediaParts(messages);
      const prepared = await prepareChatImages(tokens, rendered.media, media, model.multimodal, ctx.media);
      tokens = prepared.promptIds;
    } else tokens = tokenizer.encode(body.prompt, { addSpecialTokens: body.add_special_tokens ?? true });
    return {
      count: tokens.length,
      max_model_len: model.maxModelLen,
      tokens,
      ...(body.return_token_strs ? { token_strs: tokens.map((t) => tokenizer.idToToken(t)) } : {}),
    };
  });

  app.post('/detokenize', { schema: { body: DetokenizeBody } }, async (request) => {
    const body = request.body;
    checkModelName(ctx.host, body.model);
    const { tokenizer } = ctx.host.require();
    const bad = body.tokens.findIndex((t) => t < 0 || t >= tokenizer.vocabSize);
    if (bad >= 0)
      throw new ApiError(
        400,
        'DAWN_ERR_API_INVALID_PARAM',
        `tokens[${bad}] is ${body.tokens[bad]}, expected a token id in [0, ${tokenizer.vocabSize})`,
        { param: 'tokens' },
      );
    return { prompt: tokenizer.decode(body.tokens) };
  });
}

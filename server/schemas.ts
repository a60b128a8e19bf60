// Request bodies as TypeBox schemas (Fastify validates them; routes get the static types). Fields vLLM accepts
// are listed with their wire types; unknown fields pass through and are ignored, as vLLM does; a known field of
// the wrong type is a 400 (type coercion is off, see app.ts). Value ranges are checked by
// engine/sampling_params.ts, with vLLM's messages.
import { type Static, Type } from 'typebox';

const Nullable = <T extends Parameters<typeof Type.Optional>[0]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));
const Int = Type.Integer();
const Num = Type.Number();
const Bool = Type.Boolean();
const Str = Type.String();

const StreamOptions = Type.Object({
  include_usage: Nullable(Bool),
  continuous_usage_stats: Nullable(Bool),
});

/** Sampling fields shared by both generation endpoints (vLLM's extra params included). */
const samplingFields = {
  model: Nullable(Str),
  max_tokens: Nullable(Int),
  temperature: Nullable(Num),
  top_p: Nullable(Num),
  top_k: Nullable(Int),
  min_p: Nullable(Num),
  n: Nullable(Int),
  stop: Nullable(Type.Union([Str, Type.Array(Str)])),
  stop_token_ids: Nullable(Type.Array(Int)),
  seed: Nullable(Int),
  presence_penalty: Nullable(Num),
  frequency_penalty: Nullable(Num),
  repetition_penalty: Nullable(Num),
  ignore_eos: Nullable(Bool),
  min_tokens: Nullable(Int),
  include_stop_str_in_output: Nullable(Bool),
  skip_special_tokens: Nullable(Bool),
  stream: Nullable(Bool),
  stream_options: Nullable(StreamOptions),
  return_token_ids: Nullable(Bool),
  user: Nullable(Str),
};

const TextPart = Type.Object({ type: Type.Literal('text'), text: Str });
const ImageUrlPart = Type.Object({
  type: Type.Literal('image_url'),
  image_url: Type.Object({ url: Str, detail: Type.Optional(Str) }),
});
const VideoUrlPart = Type.Object({ type: Type.Literal('video_url'), video_url: Type.Object({ url: Str }) });
const ContentPart = Type.Union([TextPart, ImageUrlPart, VideoUrlPart]);

const Message = Type.Object({
  role: Str,
  content: Nullable(Type.Union([Str, Type.Array(ContentPart)])),
  name: Type.Optional(Str),
  tool_calls: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  tool_call_id: Type.Optional(Str),
});

export const ChatCompletionBody = Type.Object({
  ...samplingFields,
  messages: Type.Array(Message, { minItems: 1 }),
  max_completion_tokens: Nullable(Int),
  logprobs: Nullable(Bool),
  top_logprobs: Nullable(Int),
  tools: Nullable(Type.Array(Type.Object({}, { additionalProperties: true }))),
  chat_template_kwargs: Nullable(Type.Object({}, { additionalProperties: true })),
  add_generation_prompt: Nullable(Bool),
  continue_final_message: Nullable(Bool),
});
export type ChatCompletionBody = Static<typeof ChatCompletionBody>;

const TokenIds = Type.Array(Int, { minItems: 1 });

export const CompletionBody = Type.Object({
  ...samplingFields,
  prompt: Type.Union([Str, Type.Array(Str, { minItems: 1 }), TokenIds, Type.Array(TokenIds, { minItems: 1 })]),
  logprobs: Nullable(Int),
  echo: Nullable(Bool),
  suffix: Nullable(Str),
  best_of: Nullable(Int),
  add_special_tokens: Nullable(Bool),
});
export type CompletionBody = Static<typeof CompletionBody>;

export const TokenizeBody = Type.Union([
  Type.Object({
    model: Nullable(Str),
    prompt: Str,
    add_special_tokens: Nullable(Bool),
    return_token_strs: Nullable(Bool),
  }),
  Type.Object({
    model: Nullable(Str),
    messages: Type.Array(Message, { minItems: 1 }),
    add_generation_prompt: Nullable(Bool),
    continue_final_message: Nullable(Bool),
    add_special_tokens: Nullable(Bool),
    chat_template_kwargs: Nullable(Type.Object({}, { additionalProperties: true })),
    tools: Nullable(Type.Array(Type.Object({}, { additionalProperties: true }))),
    return_token_strs: Nullable(Bool),
  }),
]);
export type TokenizeBody = Static<typeof TokenizeBody>;

export const DetokenizeBody = Type.Object({ model: Nullable(Str), tokens: Type.Array(Int) });
export type DetokenizeBody = Static<typeof DetokenizeBody>;

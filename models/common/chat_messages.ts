// OpenAI-style chat messages, checked and turned into what HF chat templates read, as vLLM's chat_utils does:
// an image_url part becomes {type:'image'} (video_url {type:'video'}), tool-call arguments sent as JSON text are
// parsed to objects (templates print them with tojson), null content becomes ''. The media list keeps the order
// in which the template will place the <|image_pad|> / <|video_pad|> tokens.
import { ModelError } from '../../core/errors.js';
import { jsonKind } from './read_json.js';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
const chatRoles: readonly string[] = ['system', 'user', 'assistant', 'tool'];

export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string; detail?: string } }
  | { type: 'video_url'; video_url: { url: string } }
  | { type: 'image'; image?: string }
  | { type: 'video'; video?: string };

export interface ChatToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments?: string | Record<string, unknown> | null };
}

export interface ChatMessage {
  role: string;
  content?: string | ChatContentPart[] | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  /** Other fields (reasoning_content, ...) reach the template unchanged. */
  [field: string]: unknown;
}

/** An OpenAI function tool, passed to the template as given (the template prints it with tojson). */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; [field: string]: unknown };
}

/** An image or video the prompt refers to, in prompt order; url is null for a bare {type:'image'} part. */
export interface ChatMediaRef {
  kind: 'image' | 'video';
  url: string | null;
}

/**
 * 'openai': content stays a list of parts (templates that loop over message.content, as Qwen-VL's);
 * 'string': text parts are joined with '\n' (templates that print message.content), and media is refused.
 */
export type ChatContentFormat = 'openai' | 'string';

/** A client error in the messages (an HTTP 400 for the server); param points at the offending field. */
export class ChatInputError extends ModelError {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super('DAWN_ERR_CHAT_INVALID_MESSAGES', `${param}: ${message}`);
  }
}

export interface NormalizedChat {
  messages: Record<string, unknown>[];
  media: ChatMediaRef[];
}

export function normalizeMessages(messages: readonly ChatMessage[], format: ChatContentFormat): NormalizedChat {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ChatInputError(`expected a non-empty array of messages, found ${jsonKind(messages)}`, 'messages');
  }
  const media: ChatMediaRef[] = [];
  const out = messages.map((message, i) => {
    const where = `messages[${i}]`;
    if (message === null || typeof message !== 'object') {
      throw new ChatInputError(`expected a message object, found ${jsonKind(message)}`, where);
    }
    if (!chatRoles.includes(message.role)) {
      throw new ChatInputError(
        `unknown role "${String(message.role)}", expected one of ${chatRoles.join(', ')}`,
        `${where}.role`,
      );
    }
    const normalized: Record<string, unknown> = { ...message };
    normalized.content = normalizeContent(message.content, format, `${where}.content`, media);
    if (message.tool_calls !== undefined && message.tool_calls !== null) {
      normalized.tool_calls = normalizeToolCalls(message.tool_calls, `${where}.tool_calls`);
    }
    return normalized;
  });
  return { messages: out, media };
}

function normalizeContent(
  content: ChatMessage['content'],
  format: ChatContentFormat,
  where: string,
  media: ChatMediaRef[],
): string | Record<string, unknown>[] {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) {
    throw new ChatInputError(`expected a string, an array of parts or null, found ${jsonKind(content)}`, where);
  }
  const parts = content.map((part, j) => normalizePart(part, `${where}[${j}]`, media));
  if (format === 'openai') return parts;
  const mediaPart = parts.findIndex((p) => p.type !== 'text');
  if (mediaPart >= 0) {
    throw new ChatInputError(
      `this model's chat template takes text only, found a ${parts[mediaPart].type} part`,
      `${where}[${mediaPart}]`,
    );
  }
  return parts.map((p) => p.text as string).join('\n');
}

function normalizePart(part: ChatContentPart, where: string, media: ChatMediaRef[]): Record<string, unknown> {
  if (part === null || typeof part !== 'object') {
    throw new ChatInputError(`expected a content part object, found ${jsonKind(part)}`, where);
  }
  switch (part.type) {
    case 'text':
      if (typeof part.text !== 'string')
        throw new ChatInputError(`expected a string, found ${jsonKind(part.text)}`, `${where}.text`);
      return { type: 'text', text: part.text };
    case 'image_url':
      media.push({ kind: 'image', url: requireUrl(part.image_url, `${where}.image_url`) });
      return { type: 'image' };
    case 'video_url':
      media.push({ kind: 'video', url: requireUrl(part.video_url, `${where}.video_url`) });
      return { type: 'video' };
    case 'image':
    case 'video':
      media.push({ kind: part.type, url: null });
      return { type: part.type };
    default:
      throw new ChatInputError(
        `unknown content part type "${String((part as { type?: unknown }).type)}", expected text, image_url or video_url`,
        `${where}.type`,
      );
  }
}

function requireUrl(value: { url?: unknown } | undefined, where: string): string {
  if (value === null || typeof value !== 'object' || typeof value.url !== 'string' || value.url === '') {
    throw new ChatInputError(`expected {"url": string}, found ${jsonKind(value)}`, where);
  }
  return value.url;
}

// vLLM parses arguments sent as JSON text (the OpenAI wire format) into objects: templates print them with
// tojson, as transformers expects. Missing or empty arguments become {}.
function normalizeToolCalls(calls: readonly ChatToolCall[], where: string): Record<string, unknown>[] {
  if (!Array.isArray(calls)) throw new ChatInputError(`expected an array, found ${jsonKind(calls)}`, where);
  return calls.map((call, k) => {
    const at = `${where}[${k}].function`;
    if (call === null || typeof call !== 'object' || call.function === null || typeof call.function !== 'object') {
      throw new ChatInputError(`expected {"name", "arguments"}, found ${jsonKind(call?.function)}`, at);
    }
    if (typeof call.function.name !== 'string') {
      throw new ChatInputError(`expected a string, found ${jsonKind(call.function.name)}`, `${at}.name`);
    }
    return {
      ...call,
      function: { ...call.function, arguments: parseArguments(call.function.arguments, `${at}.arguments`) },
    };
  });
}

function parseArguments(args: unknown, where: string): unknown {
  if (args === undefined || args === null || args === '') return {};
  if (typeof args !== 'string') return args;
  try {
    return JSON.parse(args);
  } catch (err) {
    throw new ChatInputError(`expected JSON text, could not parse it (${(err as Error).message})`, where);
  }
}

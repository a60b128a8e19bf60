// Renders a checkpoint's chat template through @huggingface/jinja with the variables transformers'
// apply_chat_template passes (messages, tools, add_generation_prompt, the special token strings, and the
// request's chat_template_kwargs), plus transformers' continue_final_message cut.
import { Template } from '@huggingface/jinja';
import { ModelError } from '../../core/errors.js';
import {
  type ChatContentFormat,
  ChatInputError,
  type ChatMediaRef,
  type ChatMessage,
  type ChatTool,
  normalizeMessages,
} from './chat_messages.js';
import { type ChatTemplateSource, findChatTemplate } from './chat_template_source.js';
import type { SpecialTokenStrings, Tokenizer } from './tokenizer.js';

export interface ChatRenderOptions {
  /** End with the assistant's turn header. Default true, as vLLM's chat API. */
  addGenerationPrompt?: boolean;
  /** Leave the last (assistant) message open for the model to continue; excludes addGenerationPrompt. */
  continueFinalMessage?: boolean;
  tools?: readonly ChatTool[] | null;
  /** Extra template variables (add_vision_id, enable_thinking, ...), passed through as given. */
  chatTemplateKwargs?: Record<string, unknown>;
}

export interface RenderedChat {
  prompt: string;
  /** The images and videos in the order their pad tokens appear in the prompt. */
  media: ChatMediaRef[];
}

// Variables the caller sets through the options above; chat_template_kwargs may not replace them.
const reservedVariables = ['messages', 'tools', 'documents', 'add_generation_prompt', 'continue_final_message'];

export class ChatTemplate {
  readonly contentFormat: ChatContentFormat;
  private readonly compiled = new Map<string, Template>();

  /** The template for the checkpoint in `dir` (or the --chat-template override), with `tokenizer`'s special tokens. */
  static load(dir: string, tokenizer: Tokenizer, override?: string | null): ChatTemplate {
    return new ChatTemplate(findChatTemplate(dir, override), tokenizer.specialTokens);
  }

  constructor(
    readonly source: ChatTemplateSource,
    private readonly specialTokens: SpecialTokenStrings,
  ) {
    this.compile(source.text); // fail at startup, not on the first request
    this.contentFormat = detectContentFormat(source.text);
  }

  render(messages: readonly ChatMessage[], options: ChatRenderOptions = {}): RenderedChat {
    const continueFinal = options.continueFinalMessage ?? false;
    const addGenerationPrompt = options.addGenerationPrompt ?? !continueFinal;
    if (continueFinal && addGenerationPrompt) {
      throw new ChatInputError(
        'continue_final_message and add_generation_prompt cannot both be true',
        'continue_final_message',
      );
    }
    const { messages: normalized, media } = normalizeMessages(messages, this.contentFormat);
    const kwargs = options.chatTemplateKwargs ?? {};
    const clash = Object.keys(kwargs).find((k) => reservedVariables.includes(k));
    if (clash !== undefined) {
      throw new ChatInputError(
        `"${clash}" is set by the request itself, not through chat_template_kwargs`,
        `chat_template_kwargs.${clash}`,
      );
    }
    const tools = options.tools && options.tools.length > 0 ? options.tools : null;
    const text = (tools && this.source.named.get('tool_use')) || this.source.text;
    let prompt: string;
    try {
      prompt = this.compile(text).render({
        bos_token: this.specialTokens.bos,
        eos_token: this.specialTokens.eos,
        pad_token: this.specialTokens.pad,
        unk_token: this.specialTokens.unk,
        ...kwargs,
        messages: normalized,
        tools,
        documents: null,
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (err) {
      // raise_exception() in a template reports a conversation the template refuses: the client's error.
      throw new ChatInputError(
        `the chat template (${this.source.origin}) refused the conversation: ${(err as Error).message}`,
        'messages',
      );
    }
    if (continueFinal) prompt = cutAfterFinalMessage(prompt, messages[messages.length - 1]);
    return { prompt, media };
  }

  private compile(text: string): Template {
    let template = this.compiled.get(text);
    if (!template) {
      try {
        template = new Template(text);
      } catch (err) {
        throw new ModelError(
          'DAWN_ERR_MODEL_CHAT_TEMPLATE_INVALID',
          `chat template: ${this.source.origin} does not parse: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      this.compiled.set(text, template);
    }
    return template;
  }
}

/** Renders with `template` and encodes the prompt as vLLM's chat endpoint does (no BOS/EOS added on top). */
export function applyChatTemplate(
  tokenizer: Tokenizer,
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  options: ChatRenderOptions = {},
): RenderedChat & { promptIds: number[] } {
  const rendered = template.render(messages, options);
  return { ...rendered, promptIds: tokenizer.encode(rendered.prompt, { addSpecialTokens: false }) };
}

// transformers' continue_final_message: cut the prompt right after the final message's text, dropping the
// end-of-turn the template wrote. Trailing whitespace of the message is kept only if the template kept it.
function cutAfterFinalMessage(prompt: string, final: ChatMessage): string {
  const content = final.content;
  let text: string | undefined;
  if (typeof content === 'string') text = content;
  else if (Array.isArray(content)) {
    const lastText = [...content].reverse().find((p) => p.type === 'text');
    text = lastText?.type === 'text' ? lastText.text : undefined;
  }
  if (text === undefined) {
    throw new ChatInputError('continue_final_message needs a text part in the final message to continue', 'messages');
  }
  const at = prompt.lastIndexOf(text.trim());
  if (at < 0) {
    throw new ChatInputError(
      'continue_final_message: the final message does not appear in the rendered prompt',
      'messages',
    );
  }
  const keptAsIs = prompt.slice(at, at + text.trimStart().length) === text;
  return prompt.slice(0, at + (keptAsIs ? text.trimStart() : text.trim()).length);
}

// vLLM's 'auto' content format: a template that loops over a message's content wants the list of parts;
// one that prints content directly wants a string.
function detectContentFormat(text: string): ChatContentFormat {
  return /\{%-?\s*for\s+\w+\s+in\s+[\w.]*(?:\.content\b|\[\s*['"]content['"]\s*\])/.test(text) ? 'openai' : 'string';
}

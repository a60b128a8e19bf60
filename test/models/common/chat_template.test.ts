import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChatInputError, type ChatMessage, type ChatTool } from '../../../models/common/chat_messages.js';
import { applyChatTemplate, type ChatRenderOptions, ChatTemplate } from '../../../models/common/chat_template.js';
import { expandPlaceholders } from '../../../models/common/expand_placeholders.js';
import { goldenPromptIds, loadTinyTokenizer, tinyCheckpointDir } from './fixture_tokenizer.js';

interface RenderCase {
  name: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  add_generation_prompt?: boolean;
  kwargs?: Record<string, unknown>;
  expected: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const cases = (JSON.parse(readFileSync(join(here, 'chat_template_cases.json'), 'utf8')) as { cases: RenderCase[] })
  .cases;
const tokenizer = loadTinyTokenizer();
const dir = tinyCheckpointDir();
const golden = goldenPromptIds();

function inputErrorOf(fn: () => unknown): ChatInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ChatInputError);
    return err as ChatInputError;
  }
  throw new Error('expected a ChatInputError');
}

describe.skipIf(!tokenizer || !dir || !golden)('ChatTemplate with the real Qwen3-VL Instruct template', () => {
  const tok = tokenizer!;
  const template = ChatTemplate.load(dir!, tok);
  const render = (messages: ChatMessage[], options?: ChatRenderOptions) => template.render(messages, options).prompt;

  it('comes from chat_template.jinja and takes content as a list of parts', () => {
    expect(template.source.origin).toBe(join(dir!, 'chat_template.jinja'));
    expect(template.contentFormat).toBe('openai');
  });

  it.each(cases.map((c) => [c.name, c] as const))('renders "%s" as Python jinja2 does', (_, c) => {
    const options: ChatRenderOptions = {
      addGenerationPrompt: c.add_generation_prompt ?? false,
      tools: c.tools,
      chatTemplateKwargs: c.kwargs,
    };
    expect(render(c.messages, options)).toBe(c.expected);
  });

  it('encodes "What is 7 times 8?" to transformers golden prompt ids', () => {
    const { promptIds } = applyChatTemplate(tok, template, [{ role: 'user', content: 'What is 7 times 8?' }]);
    expect(promptIds).toEqual(golden!.text);
  });

  it('reproduces the golden image prompt once the image pad is expanded to 6 = (64/32)·(96/32) tokens', () => {
    const url = 'data:image/png;base64,iVBORw0KGgo=';
    const { promptIds, media } = applyChatTemplate(tok, template, [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url } },
          { type: 'text', text: 'Describe this image.' },
        ],
      },
    ]);
    expect(media).toEqual([{ kind: 'image', url }]);
    expect(promptIds.filter((id) => id === tok.requireTokenId('<|image_pad|>'))).toHaveLength(1);
    expect(expandPlaceholders(promptIds, tok.requireTokenId('<|image_pad|>'), [6])).toEqual(golden!.image);
  });

  it('writes the tools block the template spells out', () => {
    const tools: ChatTool[] = [{ type: 'function', function: { name: 'now', parameters: { type: 'object' } } }];
    expect(render([{ role: 'user', content: 'Time?' }], { tools })).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}\n</tools>\n\n' +
        'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nTime?<|im_end|>\n<|im_start|>assistant\n',
    );
    // No tools (or an empty list) means no tools block.
    expect(render([{ role: 'user', content: 'Time?' }], { tools: [] })).toBe(
      '<|im_start|>user\nTime?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('parses tool-call arguments sent as JSON text, as vLLM does, so they print like objects', () => {
    const call = (args: string | Record<string, unknown> | null): ChatMessage[] => [
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: args } }],
      },
    ];
    const expected =
      '<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n' +
      '{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call><|im_end|>\n';
    const options = { addGenerationPrompt: false };
    expect(render(call('{"city":"Paris","days":2}'), options)).toBe(expected);
    expect(render(call({ city: 'Paris', days: 2 }), options)).toBe(expected);
    expect(render(call(''), options)).toContain('"arguments": {}}');
  });

  it('numbers pictures with add_vision_id and passes other kwargs through', () => {
    const messages: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'a.png' } },
          { type: 'image', image: 'b.png' },
          { type: 'text', text: 'Same?' },
        ],
      },
    ];
    const { prompt, media } = template.render(messages, {
      chatTemplateKwargs: { add_vision_id: true, enable_thinking: false },
    });
    expect(prompt).toBe(
      '<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>' +
        'Picture 2: <|vision_start|><|image_pad|><|vision_end|>Same?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(media).toEqual([
      { kind: 'image', url: 'a.png' },
      { kind: 'image', url: null },
    ]);
  });

  it('continue_final_message leaves the last assistant message open, as transformers cuts it', () => {
    const messages = (last: string): ChatMessage[] => [
      { role: 'user', content: 'What is 7 times 8?' },
      { role: 'assistant', content: last },
    ];
    const head = '<|im_start|>user\nWhat is 7 times 8?<|im_end|>\n<|im_start|>assistant\n';
    expect(render(messages('The answer is'), { continueFinalMessage: true })).toBe(`${head}The answer is`);
    // The template keeps trailing whitespace, so the cut keeps it too.
    expect(render(messages('The answer is '), { continueFinalMessage: true })).toBe(`${head}The answer is `);
    const err = inputErrorOf(() => render(messages('x'), { continueFinalMessage: true, addGenerationPrompt: true }));
    expect(err.param).toBe('continue_final_message');
  });

  it('rejects an unknown role, naming the message', () => {
    const err = inputErrorOf(() =>
      render([
        { role: 'user', content: 'hi' },
        { role: 'developer', content: 'x' },
      ]),
    );
    expect(err.param).toBe('messages[1].role');
    expect(err.message).toContain('unknown role "developer"');
    expect(err.message).toContain('system, user, assistant, tool');
  });

  it('rejects malformed content and tool calls, naming the field', () => {
    const bad = (messages: unknown, options?: ChatRenderOptions) =>
      inputErrorOf(() => render(messages as ChatMessage[], options)).param;
    expect(bad([])).toBe('messages');
    expect(bad([{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }])).toBe(
      'messages[0].content[0].type',
    );
    expect(bad([{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }])).toBe(
      'messages[0].content[0].image_url',
    );
    expect(bad([{ role: 'user', content: [{ type: 'text', text: 3 }] }])).toBe('messages[0].content[0].text');
    expect(bad([{ role: 'user', content: 42 }])).toBe('messages[0].content');
    expect(
      bad([{ role: 'assistant', content: '', tool_calls: [{ function: { name: 'f', arguments: '{bad' } }] }]),
    ).toBe('messages[0].tool_calls[0].function.arguments');
    expect(bad([{ role: 'user', content: 'x' }], { chatTemplateKwargs: { messages: [] } })).toBe(
      'chat_template_kwargs.messages',
    );
  });
});

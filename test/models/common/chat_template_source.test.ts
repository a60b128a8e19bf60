import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../core/errors.js';
import { ChatInputError, type ChatMessage } from '../../../models/common/chat_messages.js';
import { ChatTemplate } from '../../../models/common/chat_template.js';
import { findChatTemplate } from '../../../models/common/chat_template_source.js';
import type { SpecialTokenStrings } from '../../../models/common/tokenizer.js';

const specialTokens: SpecialTokenStrings = { bos: '<s>', eos: '</s>', pad: null, unk: '<unk>' };
const hello: ChatMessage[] = [{ role: 'user', content: 'hello' }];

function checkpoint(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dawnllm-tpl-'));
  for (const [name, value] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
  }
  return dir;
}

function templateFor(files: Record<string, unknown>, override?: string): ChatTemplate {
  return new ChatTemplate(findChatTemplate(checkpoint(files), override), specialTokens);
}

function errorOf<T extends Error>(cls: new (...args: never[]) => T, fn: () => unknown): T {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as T;
  }
  throw new Error(`expected a ${cls.name}`);
}

const printRoles = '{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}';

describe('finding the chat template', () => {
  it('prefers chat_template.jinja over chat_template.json over tokenizer_config.json', () => {
    const config = { 'tokenizer_config.json': { chat_template: 'config' } };
    const processor = { 'chat_template.json': { chat_template: 'processor' } };
    expect(templateFor({ ...config, ...processor, 'chat_template.jinja': 'jinja' }).render(hello).prompt).toBe('jinja');
    expect(templateFor({ ...config, ...processor }).render(hello).prompt).toBe('processor');
    expect(templateFor(config).render(hello).prompt).toBe('config');
  });

  it('picks the "tool_use" named template when the request has tools, else "default"', () => {
    const template = templateFor({
      'tokenizer_config.json': {
        chat_template: [
          { name: 'default', template: 'plain' },
          { name: 'tool_use', template: 'tools:{{ tools | length }}' },
        ],
      },
    });
    expect(template.render(hello).prompt).toBe('plain');
    expect(template.render(hello, { tools: [{ type: 'function', function: { name: 'f' } }] }).prompt).toBe('tools:1');
  });

  it('takes --chat-template as a file, or as the template itself with \\n escapes', () => {
    const dir = checkpoint({ 'my.jinja': 'from file', 'chat_template.jinja': 'ignored' });
    expect(new ChatTemplate(findChatTemplate(dir, join(dir, 'my.jinja')), specialTokens).render(hello).prompt).toBe(
      'from file',
    );
    expect(templateFor({}, '{{ bos_token }}\\n{{ messages[0].content }}').render(hello).prompt).toBe('<s>\nhello');
    const err = errorOf(ModelError, () => templateFor({}, './missing/template.jinja'));
    expect(err.code).toBe('DAWN_ERR_MODEL_CHAT_TEMPLATE_MISSING');
    expect(err.message).toContain('looks like a file path');
  });

  it('says where it looked when there is no template', () => {
    const err = errorOf(ModelError, () => templateFor({ 'tokenizer_config.json': {} }));
    expect(err.code).toBe('DAWN_ERR_MODEL_CHAT_TEMPLATE_MISSING');
    expect(err.message).toContain('chat_template.jinja');
    expect(err.message).toContain('--chat-template');
  });

  it('rejects a template that does not parse at load time, naming the file', () => {
    const err = errorOf(ModelError, () => templateFor({ 'chat_template.jinja': '{% for m in messages %}oops' }));
    expect(err.code).toBe('DAWN_ERR_MODEL_CHAT_TEMPLATE_INVALID');
    expect(err.message).toContain('chat_template.jinja does not parse');
  });

  it('rejects named templates without a default', () => {
    const err = errorOf(ModelError, () =>
      templateFor({
        'tokenizer_config.json': {
          chat_template: [
            { name: 'a', template: 'x' },
            { name: 'b', template: 'y' },
          ],
        },
      }),
    );
    expect(err.message).toContain('no template named "default" among a, b');
  });
});

describe('rendering with a generic template', () => {
  it('passes the special token strings and chat_template_kwargs', () => {
    // (Booleans are tested, not printed: @huggingface/jinja prints `true` where Python prints `True`.)
    const template = templateFor({
      'chat_template.jinja':
        "{{ bos_token }}|{{ eos_token }}|{{ 'think' if enable_thinking else 'no-think' }}|{{ 'gen' if add_generation_prompt }}",
    });
    expect(template.render(hello, { chatTemplateKwargs: { enable_thinking: false } }).prompt).toBe(
      '<s>|</s>|no-think|gen',
    );
    expect(template.render(hello, { chatTemplateKwargs: { enable_thinking: true } }).prompt).toBe('<s>|</s>|think|gen');
  });

  it('joins text parts with newlines for a template that prints content as a string, and refuses images', () => {
    const template = templateFor({ 'chat_template.jinja': printRoles });
    expect(template.contentFormat).toBe('string');
    const parts: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ];
    expect(template.render(parts).prompt).toBe('user=a\nb;');
    const err = errorOf(ChatInputError, () =>
      template.render([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x.png' } }] }]),
    );
    expect(err.param).toBe('messages[0].content[0]');
  });

  it('turns raise_exception into a client error with the template message', () => {
    const template = templateFor({
      'chat_template.jinja':
        "{% if messages[0].role != 'system' %}{{ raise_exception('System message first') }}{% endif %}",
    });
    const err = errorOf(ChatInputError, () => template.render(hello));
    expect(err.message).toContain('System message first');
    expect(err.param).toBe('messages');
  });
});

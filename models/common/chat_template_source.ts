// Finds a checkpoint's chat template, in vLLM's order: the --chat-template override (a file path, or the template
// itself when it holds '{', '}' or a newline), then chat_template.jinja beside the checkpoint (transformers 5
// writes it there), then chat_template.json (older processors), then tokenizer_config.json's chat_template.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from '../../core/errors.js';
import { type JsonObject, jsonKind, readJsonObject, readOptionalJsonObject } from './read_json.js';

export interface ChatTemplateSource {
  /** The template named 'default' (or the only one). */
  text: string;
  /** Other named templates (tokenizer_config may carry e.g. 'tool_use'); used when the request has tools. */
  named: ReadonlyMap<string, string>;
  /** Where it came from, for messages. */
  origin: string;
}

export function findChatTemplate(dir: string, override?: string | null): ChatTemplateSource {
  if (override !== undefined && override !== null) return overrideTemplate(override);
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) return { text: readFileSync(jinjaPath, 'utf8'), named: new Map(), origin: jinjaPath };
  const processorPath = join(dir, 'chat_template.json');
  const processor = readOptionalJsonObject(processorPath, 'chat template');
  if (processor && processor.chat_template !== undefined) {
    return fromConfigValue(processor.chat_template, `${processorPath} chat_template`);
  }
  const configPath = join(dir, 'tokenizer_config.json');
  const config: JsonObject = existsSync(configPath) ? readJsonObject(configPath, 'tokenizer config') : {};
  if (config.chat_template !== undefined && config.chat_template !== null) {
    return fromConfigValue(config.chat_template, `${configPath} chat_template`);
  }
  throw new ModelError('DAWN_ERR_MODEL_CHAT_TEMPLATE_MISSING', `chat template: none found for ${dir}`, {
    hint: `expected chat_template.jinja, chat_template.json or a chat_template field in tokenizer_config.json; or pass --chat-template <file or template>`,
  });
}

function overrideTemplate(value: string): ChatTemplateSource {
  if (existsSync(value) && statSync(value).isFile()) {
    return { text: readFileSync(value, 'utf8'), named: new Map(), origin: value };
  }
  if (!/[{}\n]/.test(value)) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CHAT_TEMPLATE_MISSING',
      `chat template: --chat-template ${value} looks like a file path, but no such file exists`,
    );
  }
  return { text: unescapeCommandLine(value), named: new Map(), origin: '--chat-template (literal)' };
}

// A template typed on the command line spells newlines as \n; vLLM decodes such escapes too.
function unescapeCommandLine(value: string): string {
  const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' };
  return value.replace(/\\([ntr\\'"])/g, (_, c: string) => escapes[c]);
}

// A string, or a list of {name, template} as tokenizer_config.json stores several named templates.
function fromConfigValue(value: unknown, origin: string): ChatTemplateSource {
  if (typeof value === 'string') return { text: value, named: new Map(), origin };
  const entries: [string, string][] = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      const entry = item as JsonObject;
      if (typeof entry?.name !== 'string' || typeof entry?.template !== 'string') {
        throw new ModelError(
          'DAWN_ERR_MODEL_CHAT_TEMPLATE_INVALID',
          `chat template: ${origin} entries should be {"name": string, "template": string}, found ${JSON.stringify(item)?.slice(0, 80)}`,
        );
      }
      entries.push([entry.name, entry.template]);
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [name, template] of Object.entries(value)) {
      if (typeof template === 'string') entries.push([name, template]);
    }
  } else {
    throw new ModelError(
      'DAWN_ERR_MODEL_CHAT_TEMPLATE_INVALID',
      `chat template: ${origin} should be a string or a list of named templates, found ${jsonKind(value)}`,
    );
  }
  const named = new Map(entries);
  const text = named.get('default') ?? (named.size === 1 ? entries[0][1] : undefined);
  if (text === undefined) {
    throw new ModelError(
      'DAWN_ERR_MODEL_CHAT_TEMPLATE_INVALID',
      `chat template: ${origin} has no template named "default" among ${[...named.keys()].join(', ') || 'none'}`,
    );
  }
  return { text, named, origin };
}

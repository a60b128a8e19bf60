// A Hugging Face checkpoint's tokenizer (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
// with the HF defaults vLLM relies on: added tokens matched in text, special tokens skippable on decode, no
// clean-up of spaces unless tokenizer_config asks for it. Loaded once per directory.
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ModelError } from '../../core/errors.js';
import { type JsonObject, jsonKind, readJsonObject } from './read_json.js';

export interface EncodeOptions {
  /** Add what the tokenizer's post-processor adds (BOS etc.); HF's default is true. Chat prompts use false. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop tokens marked special in tokenizer.json (`<|im_end|>`; not `<tool_call>`). Default false, as HF. */
  skipSpecialTokens?: boolean;
}

/** The named special tokens of tokenizer_config.json, as strings (null when the config sets none). */
export interface SpecialTokenStrings {
  bos: string | null;
  eos: string | null;
  pad: string | null;
  unk: string | null;
}

const cache = new Map<string, Tokenizer>();

export class Tokenizer {
  /** Number of ids the tokenizer knows (largest id + 1); config.json's vocab_size may be larger (padding rows). */
  readonly vocabSize: number;
  readonly specialTokens: SpecialTokenStrings;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Ids of added tokens marked special: what skipSpecialTokens drops. */
  readonly specialIds: ReadonlySet<number>;
  private readonly cleanUpSpaces: boolean;

  /** Loads `dir`'s tokenizer, or returns the one already loaded from that directory. */
  static load(dir: string): Tokenizer {
    const key = realDir(dir);
    let tokenizer = cache.get(key);
    if (!tokenizer) {
      tokenizer = Tokenizer.fromFiles(key);
      cache.set(key, tokenizer);
    }
    return tokenizer;
  }

  private static fromFiles(dir: string): Tokenizer {
    const jsonPath = join(dir, 'tokenizer.json');
    const configPath = join(dir, 'tokenizer_config.json');
    const json = readJsonObject(jsonPath, 'tokenizer');
    const config = readJsonObject(configPath, 'tokenizer config');
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(json, config);
    } catch (err) {
      throw new ModelError(
        'DAWN_ERR_MODEL_TOKENIZER_INVALID',
        `tokenizer: ${jsonPath} could not be loaded by @huggingface/tokenizers: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return new Tokenizer(hf, config, configPath);
  }

  /** Prefer Tokenizer.load; this is for tokenizers built in memory (tests). */
  constructor(
    private readonly hf: HfTokenizer,
    /** tokenizer_config.json as read, for fields this class does not interpret. */
    readonly config: Readonly<JsonObject>,
    configPath = 'tokenizer_config.json',
  ) {
    const vocab = hf.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set([...hf.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.id));
    this.specialTokens = {
      bos: specialTokenString(config, 'bos_token', configPath),
      eos: specialTokenString(config, 'eos_token', configPath),
      pad: specialTokenString(config, 'pad_token', configPath),
      unk: specialTokenString(config, 'unk_token', configPath),
    };
    const idOf = (token: string | null, field: string): number | null => {
      if (token === null) return null;
      const id = this.tokenToId(token);
      if (id === null) {
        throw new ModelError(
          'DAWN_ERR_MODEL_TOKENIZER_INVALID',
          `tokenizer: ${configPath} sets ${field} "${token}", which is not in the vocabulary of tokenizer.json`,
        );
      }
      return id;
    };
    this.bosTokenId = idOf(this.specialTokens.bos, 'bos_token');
    this.eosTokenId = idOf(this.specialTokens.eos, 'eos_token');
    this.padTokenId = idOf(this.specialTokens.pad, 'pad_token');
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Ids the tokenizer does not know (padding rows of the embedding) decode to nothing, as in HF's Rust decode. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known = ids.filter((id) => Number.isInteger(id) && id >= 0 && id < this.vocabSize);
    if (known.length === 0) return ''; // the JS port throws on an empty list
    return this.hf.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | null {
    return this.hf.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.hf.id_to_token(id) ?? null;
  }

  /** The id of a token the caller cannot work without (`<|image_pad|>`); the error names what is missing. */
  requireTokenId(token: string): number {
    const id = this.tokenToId(token);
    if (id === null) {
      throw new ModelError('DAWN_ERR_MODEL_TOKEN_MISSING', `tokenizer: token "${token}" is not in the vocabulary`, {
        hint: 'check added_tokens in the checkpoint tokenizer.json',
      });
    }
    return id;
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }
}

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch (err) {
    throw new ModelError('DAWN_ERR_MODEL_FILE_MISSING', `tokenizer: checkpoint directory ${dir} does not exist`, {
      cause: err,
    });
  }
}

// tokenizer_config.json writes a special token as a string, as {"content": ...} (a serialized AddedToken), or null.
function specialTokenString(config: JsonObject, field: string, configPath: string): string | null {
  const value = config[field];
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value) && typeof (value as JsonObject).content === 'string') {
    return (value as JsonObject).content as string;
  }
  throw new ModelError(
    'DAWN_ERR_MODEL_TOKENIZER_INVALID',
    `tokenizer: ${configPath} field ${field} should be a string or {"content": string}, found ${jsonKind(value)}`,
  );
}

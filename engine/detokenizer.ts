// Incremental detokenization of one sequence, as vLLM's detokenize_incrementally: decode a short window of
// recent ids (prefix..end) and emit what it adds over the window's already-emitted part (prefix..read). Decoding
// a window rather than a lone token keeps tokenizers that drop a word's leading space at the start of a decode
// (SentencePiece) right. Byte-level BPE can split one UTF-8 character over several tokens: while the window
// ends in U+FFFD the text is held back, so a delta never carries half a character.

/** What the detokenizer needs from a tokenizer (models/common/tokenizer.ts's Tokenizer has it). */
export interface TokenTextDecoder {
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean }): string;
}

export interface DetokenizerOptions {
  /** vLLM's default is true. */
  skipSpecialTokens?: boolean;
  /** The prompt; its last few ids give the first output tokens their context (vLLM uses 5). */
  promptIds?: readonly number[];
}

const numContextIds = 5;
const replacementChar = '\uFFFD';

export class IncrementalDetokenizer {
  /** Context ids from the prompt, then every output id. */
  private readonly ids: number[];
  private readonly numPromptIds: number;
  /** ids[prefixOffset, readOffset) were emitted already and serve as context for the next decode. */
  private prefixOffset = 0;
  private readOffset: number;
  private emitted = '';
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly decoder: TokenTextDecoder,
    options: DetokenizerOptions = {},
  ) {
    this.ids = (options.promptIds ?? []).slice(-numContextIds);
    this.numPromptIds = this.ids.length;
    this.readOffset = this.ids.length;
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
  }

  /** Appends output ids; returns the text they complete (possibly '', while a character is still partial). */
  push(ids: number | readonly number[]): string {
    let delta = '';
    for (const id of typeof ids === 'number' ? [ids] : ids) {
      this.ids.push(id);
      delta += this.step(false);
    }
    return delta;
  }

  /** At the end of the sequence: whatever is still held back (an unfinished character decodes as U+FFFD). */
  flush(): string {
    return this.step(true);
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  get outputIds(): readonly number[] {
    return this.ids.slice(this.numPromptIds);
  }

  private step(final: boolean): string {
    const options = { skipSpecialTokens: this.skipSpecialTokens };
    const prefixText = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset), options);
    const newText = this.decoder.decode(this.ids.slice(this.prefixOffset), options);
    if (newText.length <= prefixText.length || (!final && newText.endsWith(replacementChar))) return '';
    const delta = newText.slice(prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += delta;
    return delta;
  }
}

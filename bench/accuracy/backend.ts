// What the benchmark needs from a checkpoint, in token ids so the in-process engine and a server score exactly the
// same sequences: the chat prompt of a user message, plain encoding, greedy generation, and the logprobs of every
// prompt token after the first (with the top-k alternatives, for drift).

/** The logprob of the actual next token at one prompt position, and the top alternatives (key: token). */
export interface PositionLogprobs {
  readonly logprob: number;
  /**
   * The top-k tokens' logprobs. Keys are token ids as text in-process and token strings over HTTP (what the
   * OpenAI API returns); both checkpoints of one comparison go through the same kind of backend.
   */
  readonly top: ReadonlyMap<string, number>;
}

export interface Backend {
  /** Shown in progress lines and the report (the checkpoint dir or URL). */
  readonly label: string;
  /** The user message rendered by the chat template with add_generation_prompt, as token ids. */
  chatPromptIds(userMessage: string): Promise<number[]>;
  /** Text as token ids, no special tokens added. */
  encode(text: string): Promise<number[]>;
  /** Greedy decoding of up to maxTokens after `promptIds`, stopping at EOS; the text with special tokens skipped. */
  generate(promptIds: readonly number[], maxTokens: number): Promise<string>;
  /** One entry per token of `ids` after the first: how likely that token was given the ones before it. */
  promptLogprobs(ids: readonly number[], numTop: number): Promise<PositionLogprobs[]>;
  close(): Promise<void>;
}

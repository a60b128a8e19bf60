// Qwen2.5/Qwen3's added tokens in their order. In a full-size vocabulary they sit at their real ids (from
// <|endoftext|> = 151643 on); a smaller vocabulary keeps the same order at its top, as the tiny fixture does.

export const qwenAddedTokens: readonly { content: string; special: boolean }[] = [
  { content: '<|endoftext|>', special: true },
  { content: '<|im_start|>', special: true },
  { content: '<|im_end|>', special: true },
  { content: '<|object_ref_start|>', special: true },
  { content: '<|object_ref_end|>', special: true },
  { content: '<|box_start|>', special: true },
  { content: '<|box_end|>', special: true },
  { content: '<|quad_start|>', special: true },
  { content: '<|quad_end|>', special: true },
  { content: '<|vision_start|>', special: true },
  { content: '<|vision_end|>', special: true },
  { content: '<|vision_pad|>', special: true },
  { content: '<|image_pad|>', special: true },
  { content: '<|video_pad|>', special: true },
  { content: '<tool_call>', special: false },
  { content: '</tool_call>', special: false },
  { content: '<|fim_prefix|>', special: false },
  { content: '<|fim_middle|>', special: false },
  { content: '<|fim_suffix|>', special: false },
  { content: '<|fim_pad|>', special: false },
  { content: '<|repo_name|>', special: false },
  { content: '<|file_sep|>', special: false },
  { content: '<tool_response>', special: false },
  { content: '</tool_response>', special: false },
  { content: '<think>', special: false },
  { content: '</think>', special: false },
];

/** Id of <|endoftext|> in the real Qwen vocabulary. */
export const QWEN_ENDOFTEXT_ID = 151643;

/** Id of the first added token for a vocabulary of `vocab` ids. */
export function addedTokensBase(vocab: number): number {
  return vocab >= QWEN_ENDOFTEXT_ID + qwenAddedTokens.length ? QWEN_ENDOFTEXT_ID : vocab - qwenAddedTokens.length;
}

/** Id of an added token (`<|im_end|>` etc.) for a vocabulary of `vocab` ids. */
export function addedTokenId(vocab: number, content: string): number {
  const i = qwenAddedTokens.findIndex((t) => t.content === content);
  if (i < 0) throw new Error(`synthetic tokenizer: ${content} is not one of Qwen's added tokens`);
  return addedTokensBase(vocab) + i;
}

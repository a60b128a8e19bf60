// Logprobs in the two OpenAI wire shapes. Token text is each id decoded on its own (as vLLM's
// convert_ids_list_to_tokens), so it may be a partial UTF-8 character (U+FFFD); `bytes` then carries the truth
// only as far as the decode does.
import type { TokenLogprobs } from '../engine/request.js';
import type { Tokenizer } from '../models/common/tokenizer.js';

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** -inf is not JSON; vLLM clamps it the same way. */
function finite(logprob: number): number {
  return Number.isFinite(logprob) ? logprob : -9999;
}

export class LogprobFormatter {
  constructor(private readonly tokenizer: Tokenizer) {}

  tokenText(tokenId: number): string {
    return this.tokenizer.decode([tokenId]);
  }

  /**
   * Legacy completions shape. `entries` are per token, null where nothing predicts the token (the first prompt
   * token); `tokenIds` gives the token of each entry. text_offset counts from `startOffset` characters.
   */
  completion(
    tokenIds: readonly number[],
    entries: readonly (TokenLogprobs | null)[],
    startOffset: number,
  ): CompletionLogprobs {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    let offset = startOffset;
    for (const [i, tokenId] of tokenIds.entries()) {
      const token = this.tokenText(tokenId);
      const entry = entries[i] ?? null;
      out.tokens.push(token);
      out.text_offset.push(offset);
      offset += token.length;
      if (entry === null) {
        out.token_logprobs.push(null);
        out.top_logprobs.push(null);
        continue;
      }
      out.token_logprobs.push(finite(entry.logprob));
      // vLLM's dict: the top alternatives plus the chosen token (so logprobs=0 still names it).
      const top: Record<string, number> = {};
      for (const t of entry.top) top[this.tokenText(t.tokenId)] ??= finite(t.logprob);
      top[token] ??= finite(entry.logprob);
      out.top_logprobs.push(top);
    }
    return out;
  }

  chat(entries: readonly TokenLogprobs[]): ChatTokenLogprob[] {
    const encoder = new TextEncoder();
    const item = (tokenId: number, logprob: number) => {
      const token = this.tokenText(tokenId);
      return { token, logprob: finite(logprob), bytes: [...encoder.encode(token)] };
    };
    return entries.map((e) => ({
      ...item(e.tokenId, e.logprob),
      top_logprobs: e.top.map((t) => item(t.tokenId, t.logprob)),
    }));
  }
}

// Token-level stop rules, checked after each sampled token (stop strings are the OutputProcessor's job):
// EOS (unless ignore_eos) and stop_token_ids end a sequence with 'stop' once min_tokens outputs exist;
// max_tokens or a full context end it with 'length'.
import type { FinishReason } from './request.js';
import type { Sequence } from './sequence.js';

export interface Finish {
  readonly reason: FinishReason;
  /** The stop token id or stop string that matched; null for EOS and length. */
  readonly stopReason: string | number | null;
}

export function checkTokenFinish(
  seq: Sequence,
  tokenId: number,
  eosTokenIds: readonly number[],
  maxModelLen: number,
): Finish | null {
  const { params } = seq;
  if (seq.numCompletionTokens >= params.minTokens) {
    if (!params.ignoreEos && eosTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: null };
    if (params.stopTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: tokenId };
  }
  if (seq.numCompletionTokens >= seq.maxTokens || seq.numTokens >= maxModelLen)
    return { reason: 'length', stopReason: null };
  return null;
}

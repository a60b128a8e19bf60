// Prefix-cache keys. A full KV block is named by sha256(parent key, its token ids, the images it overlaps),
// truncated to 128 bits: chaining the parent makes the key stand for the whole prefix, not just 16 tokens, and
// 128 bits make an accidental collision (which would silently serve another prompt's KV) practically impossible,
// so a hit needs no token-by-token re-check.
// A hit may end inside an image, as in vLLM (its scheduler then runs the encoder for the whole image and uses the
// rows after the hit): the blocks before are the same KV whatever follows, because attention is causal and every
// block key already names the image. The runner encodes the image whole and takes the rows its chunk computes.
import { createHash } from 'node:crypto';
import type { MultiModalInput } from './request.js';

/** 32 hex characters; a Map key. */
export type BlockHash = string & { readonly __brand: 'BlockHash' };

export function hashBlock(
  parent: BlockHash | null,
  tokenIds: readonly number[],
  extraKeys: readonly string[] = [],
): BlockHash {
  const h = createHash('sha256');
  // A fixed-width parent field keeps "no parent" distinct from any real parent.
  h.update(parent ?? '-'.repeat(32));
  h.update(new Uint8Array(Int32Array.from(tokenIds).buffer));
  for (const key of extraKeys) h.update(`|${key}`);
  return h.digest('hex').slice(0, 32) as BlockHash;
}

/** The images overlapping tokens [start, end), as "<hash>@<tokenStart>" (the placement matters too). */
export function multiModalKeys(mmInputs: readonly MultiModalInput[], start: number, end: number): string[] {
  const keys: string[] = [];
  for (const mm of mmInputs) {
    if (mm.tokenStart < end && mm.tokenStart + mm.numTokens > start) keys.push(`${mm.contentHash}@${mm.tokenStart}`);
  }
  return keys;
}

/**
 * Appends to `hashes` the keys of the full blocks of `tokenIds` not hashed yet. Tokens are only ever appended to
 * a sequence, so earlier keys stay valid and each block is hashed once.
 */
export function extendBlockHashes(
  hashes: BlockHash[],
  tokenIds: readonly number[],
  mmInputs: readonly MultiModalInput[],
  blockSize: number,
): void {
  const numFullBlocks = Math.floor(tokenIds.length / blockSize);
  for (let i = hashes.length; i < numFullBlocks; i++) {
    const start = i * blockSize;
    const end = start + blockSize;
    const parent = i === 0 ? null : hashes[i - 1];
    hashes.push(hashBlock(parent, tokenIds.slice(start, end), multiModalKeys(mmInputs, start, end)));
  }
}

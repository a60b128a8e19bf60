// Paged KV blocks: a free pool, reference counts and a prefix cache. Methods come in check/commit pairs
// (canAllocate/allocate, canAppend/appendSlots) so the scheduler can ask before it changes anything.
//
// Free blocks live in two pools. `emptyBlocks` hold nothing reusable and are handed out first. `cachedFree` hold
// the KV of a hashed full block that no sequence references any more: still a prefix-cache hit until a new block
// is needed and none is empty, then the least recently freed one is evicted (a Set iterates in insertion order).
import { EngineError } from '../core/errors.js';
import { type BlockHash, extendBlockHashes } from './block_hash.js';
import type { Sequence } from './sequence.js';

interface KvBlock {
  readonly id: number;
  refCount: number;
  /** Set once the block is full, computed and registered in the prefix cache. */
  hash: BlockHash | null;
}

/** The longest run of a sequence's leading full blocks already in the cache. */
export interface CachedPrefix {
  readonly blockIds: readonly number[];
  readonly numTokens: number;
}

const NO_PREFIX: CachedPrefix = { blockIds: [], numTokens: 0 };

export class BlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  /** Prefix-cache counters in tokens, as vLLM reports them: queries = tokens looked up, hits = tokens found. */
  numQueryTokens = 0;
  numHitTokens = 0;

  private readonly blocks: KvBlock[];
  private readonly emptyBlocks: number[];
  private readonly cachedFree = new Set<number>();
  private readonly hashToBlock = new Map<BlockHash, number>();

  /** With prefix caching off, no block is ever looked up or registered by hash. */
  readonly enablePrefixCaching: boolean;

  constructor(numBlocks: number, blockSize: number, options: { enablePrefixCaching?: boolean } = {}) {
    if (!Number.isSafeInteger(numBlocks) || numBlocks < 1)
      throw new EngineError(
        'DAWN_ERR_ENGINE_CONFIG',
        `block manager: numBlocks must be an integer ≥ 1, got ${numBlocks}`,
      );
    if (!Number.isSafeInteger(blockSize) || blockSize < 1)
      throw new EngineError(
        'DAWN_ERR_ENGINE_CONFIG',
        `block manager: blockSize must be an integer ≥ 1, got ${blockSize}`,
      );
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.enablePrefixCaching = options.enablePrefixCaching ?? true;
    this.blocks = Array.from({ length: numBlocks }, (_, id) => ({ id, refCount: 0, hash: null }));
    // Reversed so that pop() hands out block 0 first: easier to read in logs and tests.
    this.emptyBlocks = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  /** Blocks a new allocation may take (empty ones and evictable cached ones). */
  get numFreeBlocks(): number {
    return this.emptyBlocks.length + this.cachedFree.size;
  }

  /** Fraction of blocks referenced by a sequence (cached-but-free blocks count as free). */
  get usage(): number {
    return 1 - this.numFreeBlocks / this.numBlocks;
  }

  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * Cached leading blocks of `seq`. At least one token is always left to compute, because the step that computes
   * it is what produces the logits to sample from.
   */
  findCachedPrefix(seq: Sequence): CachedPrefix {
    if (!this.enablePrefixCaching) return NO_PREFIX;
    extendBlockHashes(seq.blockHashes, seq.tokenIds, seq.mmInputs, this.blockSize);
    const maxBlocks = Math.floor((seq.numTokens - 1) / this.blockSize);
    const blockIds: number[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const id = this.hashToBlock.get(seq.blockHashes[i]);
      if (id === undefined) break;
      blockIds.push(id);
    }
    return blockIds.length === 0 ? NO_PREFIX : { blockIds, numTokens: blockIds.length * this.blockSize };
  }

  /** Whether `allocate(seq, prefix, numNewTokens)` would succeed. */
  canAllocate(seq: Sequence, prefix: CachedPrefix, numNewTokens: number): boolean {
    const numNewBlocks = this.blocksFor(prefix.numTokens + numNewTokens) - prefix.blockIds.length;
    // A hit on a free cached block takes it out of the free pool too.
    const numRevived = prefix.blockIds.filter((id) => this.blocks[id].refCount === 0).length;
    return numNewBlocks + numRevived <= this.numFreeBlocks;
  }

  /** Gives a waiting sequence its block table: the cached prefix, then room for `numNewTokens` more. */
  allocate(seq: Sequence, prefix: CachedPrefix, numNewTokens: number): void {
    if (seq.blockTable.length > 0)
      throw new EngineError(
        'DAWN_ERR_ENGINE_BLOCKS',
        `block manager: allocate for seq ${seq.seqId} expected an empty block table, found ${seq.blockTable.length} blocks`,
      );
    if (!this.canAllocate(seq, prefix, numNewTokens))
      throw new EngineError(
        'DAWN_ERR_ENGINE_NO_BLOCKS',
        `block manager: seq ${seq.seqId} needs ${this.blocksFor(prefix.numTokens + numNewTokens)} blocks, ${this.numFreeBlocks} free`,
        { hint: 'call canAllocate first' },
      );
    for (const id of prefix.blockIds) this.reference(id);
    seq.blockTable = [...prefix.blockIds];
    this.grow(seq, prefix.numTokens + numNewTokens);
    seq.numComputedTokens = prefix.numTokens;
    seq.numCachedTokens = prefix.numTokens;
    this.numQueryTokens += seq.numTokens;
    this.numHitTokens += prefix.numTokens;
  }

  /** Whether `appendSlots(seq, numNewTokens)` would succeed. */
  canAppend(seq: Sequence, numNewTokens: number): boolean {
    return this.blocksFor(seq.numComputedTokens + numNewTokens) - seq.blockTable.length <= this.numFreeBlocks;
  }

  /** Makes room in a running sequence's block table for its next `numNewTokens` tokens. */
  appendSlots(seq: Sequence, numNewTokens: number): void {
    if (!this.canAppend(seq, numNewTokens))
      throw new EngineError(
        'DAWN_ERR_ENGINE_NO_BLOCKS',
        `block manager: seq ${seq.seqId} needs ${this.blocksFor(seq.numComputedTokens + numNewTokens) - seq.blockTable.length} more blocks, ${this.numFreeBlocks} free`,
        { hint: 'call canAppend first' },
      );
    this.grow(seq, seq.numComputedTokens + numNewTokens);
  }

  /**
   * Registers in the prefix cache the blocks that became full now that tokens [0, numComputedTokens) of `seq` are
   * written. Called after the step ran, never before: a block is a hit only once its KV really exists.
   */
  commitComputed(seq: Sequence, prevNumComputedTokens: number): void {
    if (!this.enablePrefixCaching) return;
    extendBlockHashes(seq.blockHashes, seq.tokenIds, seq.mmInputs, this.blockSize);
    const first = Math.floor(prevNumComputedTokens / this.blockSize);
    const end = Math.floor(seq.numComputedTokens / this.blockSize);
    for (let i = first; i < end; i++) {
      const block = this.blocks[seq.blockTable[i]];
      const hash = seq.blockHashes[i];
      // Already registered (a hit), or the same content computed twice (siblings, equal prompts in one step):
      // the first copy stays the cached one and this one is freed like any unhashed block.
      if (block.hash !== null || this.hashToBlock.has(hash)) continue;
      block.hash = hash;
      this.hashToBlock.set(hash, block.id);
    }
  }

  /** Releases every block of `seq`, last block first so a prompt's tail is evicted before its shared head. */
  free(seq: Sequence): void {
    for (let i = seq.blockTable.length - 1; i >= 0; i--) this.release(seq.blockTable[i], seq.seqId);
    seq.blockTable = [];
    seq.numComputedTokens = 0;
    seq.numCachedTokens = 0;
  }

  /** Test and debug view of one block. */
  inspect(blockId: number): Readonly<KvBlock> & { isCachedFree: boolean } {
    const b = this.blocks[blockId];
    return { ...b, isCachedFree: this.cachedFree.has(blockId) };
  }

  private grow(seq: Sequence, numTokens: number): void {
    const target = this.blocksFor(numTokens);
    while (seq.blockTable.length < target) seq.blockTable.push(this.takeFreeBlock());
  }

  private takeFreeBlock(): number {
    const empty = this.emptyBlocks.pop();
    const id = empty ?? this.evictLeastRecentlyFreed();
    this.blocks[id].refCount = 1;
    return id;
  }

  private evictLeastRecentlyFreed(): number {
    const first = this.cachedFree.values().next();
    if (first.done) throw new EngineError('DAWN_ERR_ENGINE_NO_BLOCKS', 'block manager: no free block left to evict');
    const block = this.blocks[first.value];
    this.cachedFree.delete(block.id);
    this.hashToBlock.delete(block.hash!);
    block.hash = null;
    return block.id;
  }

  private reference(blockId: number): void {
    const block = this.blocks[blockId];
    if (block.refCount === 0) this.cachedFree.delete(blockId);
    block.refCount++;
  }

  private release(blockId: number, seqId: number): void {
    const block = this.blocks[blockId];
    if (block.refCount <= 0)
      throw new EngineError(
        'DAWN_ERR_ENGINE_DOUBLE_FREE',
        `block manager: seq ${seqId} released block ${blockId}, whose ref count is already ${block.refCount}`,
      );
    block.refCount--;
    if (block.refCount > 0) return;
    if (block.hash === null) this.emptyBlocks.push(blockId);
    else this.cachedFree.add(blockId);
  }
}

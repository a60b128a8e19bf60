// Continuous batching with chunked prefill. Every step: running decodes first (one token each), then running
// prefills, then waiting sequences, as long as max_num_seqs and the token budget (max_num_batched_tokens) allow;
// a prompt longer than the budget left is split across steps, so it never stalls the decodes. When the KV pool
// runs dry the newest running sequence is preempted: its blocks are freed and it goes back to the front of the
// queue to be recomputed later (its outputs are kept and re-prefilled; hashed blocks may still be cache hits).
// Prompt-logprob chunks read back every token's logits, and the runner holds a bounded number of such rows per
// step: those chunks share that second budget and are shortened to it (the prompt is scored over more steps).
import { EngineError } from '../core/errors.js';
import type { BlockManager, CachedPrefix } from './block_manager.js';
import type { PromptLogprobsSpec, SampleSpec, ScheduledBatch, ScheduledSeq } from './scheduled_batch.js';
import type { FinishReason } from './request.js';
import type { Sequence } from './sequence.js';

export interface SchedulerOptions {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** The model's end-of-sequence ids (suppressed until min_tokens, see SampleSpec). */
  eosTokenIds: readonly number[];
  /** Tokens of prompt-logprob prefill chunks per step (ModelRunner.maxPromptLogprobTokensPerStep); default: no cap. */
  maxPromptLogprobTokens?: number;
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  /** In admission order: the last one is the newest, the first to be preempted. */
  readonly running: Sequence[] = [];
  numPreemptions = 0;

  private readonly maxNumSeqs: number;
  private readonly maxNumBatchedTokens: number;
  private readonly maxPromptLogprobTokens: number;
  /** Prompt-logprob tokens still free in the step being scheduled. */
  private promptLogprobBudget = 0;
  private readonly eosTokenIds: readonly number[];
  private nextStepId = 0;

  constructor(
    private readonly blocks: BlockManager,
    options: SchedulerOptions,
  ) {
    for (const key of ['maxNumSeqs', 'maxNumBatchedTokens'] as const) {
      const v = options[key];
      if (!Number.isSafeInteger(v) || v < 1)
        throw new EngineError('DAWN_ERR_ENGINE_CONFIG', `scheduler: ${key} must be an integer ≥ 1, got ${v}`);
    }
    const cap = options.maxPromptLogprobTokens;
    if (cap !== undefined && !(Number.isSafeInteger(cap) && cap >= 1))
      throw new EngineError(
        'DAWN_ERR_ENGINE_CONFIG',
        `scheduler: maxPromptLogprobTokens must be an integer ≥ 1, got ${cap}`,
      );
    this.maxNumSeqs = options.maxNumSeqs;
    this.maxNumBatchedTokens = options.maxNumBatchedTokens;
    this.maxPromptLogprobTokens = cap ?? Infinity;
    this.eosTokenIds = options.eosTokenIds;
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  schedule(): ScheduledBatch {
    let budget = this.maxNumBatchedTokens;
    this.promptLogprobBudget = this.maxPromptLogprobTokens;
    const scheduled = new Map<Sequence, number>();
    let hasPreempted = false;
    const decodesFirst = [...this.running.filter((s) => s.isDecoding), ...this.running.filter((s) => !s.isDecoding)];
    for (const seq of decodesFirst) {
      if (budget === 0) break;
      if (seq.status !== 'running') continue; // preempted earlier in this loop
      const numNewTokens = this.chunkLength(seq, seq.numComputedTokens, Math.min(seq.numUncomputedTokens, budget));
      if (numNewTokens === 0) continue; // its prompt-logprob rows are spent this step
      while (seq.status === 'running' && !this.blocks.canAppend(seq, numNewTokens)) {
        const victim = this.running[this.running.length - 1];
        budget += scheduled.get(victim) ?? 0;
        if (this.scoresChunk(victim, victim.numComputedTokens)) this.promptLogprobBudget += scheduled.get(victim) ?? 0;
        scheduled.delete(victim);
        this.preempt(victim);
        hasPreempted = true;
      }
      if (seq.status !== 'running') continue;
      this.blocks.appendSlots(seq, numNewTokens);
      scheduled.set(seq, numNewTokens);
      budget -= numNewTokens;
      if (this.scoresChunk(seq, seq.numComputedTokens)) this.promptLogprobBudget -= numNewTokens;
    }
    // After a preemption the pool is tight: admitting now would only preempt again next step.
    if (!hasPreempted || scheduled.size === 0) budget = this.admitWaiting(budget, scheduled);
    return this.buildBatch(scheduled);
  }

  /** Records that the batch ran: its tokens' KV now exists (and full blocks enter the prefix cache). */
  commit(batch: ScheduledBatch, seqs: ReadonlyMap<number, Sequence>): void {
    for (const entry of batch.entries) {
      const seq = seqs.get(entry.seqId);
      if (seq === undefined || seq.status !== 'running') continue; // aborted while the step ran
      const prev = seq.numComputedTokens;
      seq.numComputedTokens = entry.contextLen;
      this.blocks.commitComputed(seq, prev);
    }
  }

  /** Ends a sequence (finished or aborted): out of both queues, every block freed at once. */
  finish(seq: Sequence, reason: FinishReason): void {
    if (seq.isFinished) return;
    if (!removeFrom(this.running, seq)) removeFrom(this.waiting, seq);
    this.blocks.free(seq);
    seq.status = 'finished';
    seq.finishReason = reason;
  }

  private admitWaiting(budget: number, scheduled: Map<Sequence, number>): number {
    for (let i = 0; i < this.waiting.length && budget > 0 && this.running.length < this.maxNumSeqs;) {
      const seq = this.waiting[i];
      if (seq.isWaitingForLeader) {
        i++;
        continue;
      }
      const prefix = this.cachedPrefix(seq);
      const numNewTokens = this.chunkLength(seq, prefix.numTokens, Math.min(seq.numTokens - prefix.numTokens, budget));
      if (numNewTokens === 0) {
        i++; // prompt-logprob rows spent: it waits for the next step, requests behind it without them may go
        continue;
      }
      if (!this.blocks.canAllocate(seq, prefix, numNewTokens)) break; // first come, first served
      this.blocks.allocate(seq, prefix, numNewTokens);
      this.waiting.splice(i, 1);
      seq.status = 'running';
      this.running.push(seq);
      scheduled.set(seq, numNewTokens);
      budget -= numNewTokens;
      if (this.scoresChunk(seq, prefix.numTokens)) this.promptLogprobBudget -= numNewTokens;
    }
    return budget;
  }

  /** Whether a prefill chunk starting at `start` scores prompt tokens (promptLogprobsSpec is not null). */
  private scoresChunk(seq: Sequence, start: number): boolean {
    return seq.params.promptLogprobs !== null && !seq.isDecoding && start + 1 < seq.numPromptTokens;
  }

  /** `wanted` new tokens from `start`, shortened to the prompt-logprob rows left when the chunk scores the prompt. */
  private chunkLength(seq: Sequence, start: number, wanted: number): number {
    return this.scoresChunk(seq, start) ? Math.min(wanted, this.promptLogprobBudget) : wanted;
  }

  /** Prompt logprobs need the logits of every prompt position, so such requests never read the cache. */
  private cachedPrefix(seq: Sequence): CachedPrefix {
    return seq.params.promptLogprobs === null ? this.blocks.findCachedPrefix(seq) : { blockIds: [], numTokens: 0 };
  }

  private preempt(seq: Sequence): void {
    removeFrom(this.running, seq);
    this.blocks.free(seq);
    seq.status = 'waiting';
    // Recomputed from position 0, so the prompt is scored again from the start.
    if (seq.params.promptLogprobs !== null) seq.promptLogprobs.length = 1;
    this.waiting.unshift(seq);
    this.numPreemptions++;
  }

  private buildBatch(scheduled: Map<Sequence, number>): ScheduledBatch {
    const entries: ScheduledSeq[] = [];
    let numPrefillTokens = 0;
    let numDecodeTokens = 0;
    for (const [seq, numNewTokens] of scheduled) {
      const entry = this.entryFor(seq, numNewTokens);
      entries.push(entry);
      if (entry.phase === 'decode') numDecodeTokens += numNewTokens;
      else numPrefillTokens += numNewTokens;
    }
    entries.sort((a, b) => (a.phase === b.phase ? 0 : a.phase === 'decode' ? -1 : 1));
    const numTokens = numPrefillTokens + numDecodeTokens;
    return { stepId: this.nextStepId++, entries, numTokens, numPrefillTokens, numDecodeTokens };
  }

  private entryFor(seq: Sequence, numNewTokens: number): ScheduledSeq {
    const blockSize = this.blocks.blockSize;
    const start = seq.numComputedTokens;
    const end = start + numNewTokens;
    // Plain loops: a 64 × 1024-token prefill makes 65k entries, and Array.from with a callback is several times
    // slower (this runs on the event loop).
    const positions = new Array<number>(numNewTokens);
    const slotMapping = new Array<number>(numNewTokens);
    const table = seq.blockTable;
    for (let i = 0, p = start; i < numNewTokens; i++, p++) {
      positions[i] = p;
      slotMapping[i] = table[Math.floor(p / blockSize)] * blockSize + (p % blockSize);
    }
    const base = {
      seqId: seq.seqId,
      tokenIds: seq.tokenIds.slice(start, end),
      positions,
      slotMapping,
      blockTable: table.slice(),
      contextLen: end,
      sample: end === seq.numTokens ? this.sampleSpec(seq) : null,
      mmInputs: seq.mmInputs,
    };
    if (seq.isDecoding) return { ...base, phase: 'decode' };
    const promptLogprobs = promptLogprobsSpec(seq, start, end);
    return { ...base, phase: 'prefill', numCachedTokens: seq.numCachedTokens, promptLogprobs };
  }

  private sampleSpec(seq: Sequence): SampleSpec {
    const { params } = seq;
    const isBelowMin = seq.numCompletionTokens < params.minTokens;
    const suppressTokenIds = isBelowMin
      ? [...new Set([...(params.ignoreEos ? [] : this.eosTokenIds), ...params.stopTokenIds])]
      : [];
    return {
      params,
      seed: seq.seed,
      outputIndex: seq.numCompletionTokens,
      numLogprobs: params.logprobs,
      suppressTokenIds,
      tokenIds: seq.tokenIds,
      numPromptTokens: seq.numPromptTokens,
    };
  }
}

/** Chunk [start, end) scores the prompt tokens at positions start+1 … min(end, numPromptTokens - 1). */
function promptLogprobsSpec(seq: Sequence, start: number, end: number): PromptLogprobsSpec | null {
  const numTop = seq.params.promptLogprobs;
  if (numTop === null) return null;
  const targetTokenIds = seq.tokenIds.slice(start + 1, Math.min(end + 1, seq.numPromptTokens));
  return targetTokenIds.length === 0 ? null : { numTop, targetTokenIds };
}

function removeFrom(list: Sequence[], seq: Sequence): boolean {
  const i = list.indexOf(seq);
  if (i >= 0) list.splice(i, 1);
  return i >= 0;
}

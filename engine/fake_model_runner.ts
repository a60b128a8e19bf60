// A CPU stand-in for the model, for engine tests. Its "KV cache" stores the token id at each slot; the next token
// is a hash of the tokens it reads back through the block table, so a wrong slot mapping, a block shared by
// mistake or a prefix-cache hit on the wrong content changes the output (or throws), and a correct recompute or
// cache hit gives exactly the same tokens. Greedy: f(context). Random: f(context, seed, output index).
// A test may script greedy output instead (real text for detokenizer and stop-string tests); the script still only
// sees the context as read back from the KV cache.
import { EngineError } from '../core/errors.js';
import type { ModelRunner, PromptLogprobsOutput, SampledToken, StepOutput } from './model_runner.js';
import type { TokenLogprobs } from './request.js';
import type { SampleSpec, ScheduledBatch, ScheduledSeq } from './scheduled_batch.js';

export interface FakeModelRunnerOptions {
  numKvBlocks: number;
  blockSize?: number;
  maxModelLen?: number;
  vocabSize?: number;
  /** Make each step take this long (a timer, so the event loop runs meanwhile); 0 = a microtask. */
  stepDelayMs?: number;
  /** Greedy next token from the context read back from the KV cache; null falls back to the hash rule. */
  script?: (context: readonly number[]) => number | null;
  /** This step (by stepId) throws, as a failing GPU step would. */
  failAtStepId?: number;
  /** Prompt-logprob chunk tokens one step may carry (a step asking for more throws, as the GPU model would). */
  maxPromptLogprobTokensPerStep?: number;
}

/** What a step ran, for tests to check batching (interleaving, max_num_seqs, chunk sizes). */
export interface StepRecord {
  readonly stepId: number;
  readonly entries: readonly { seqId: number; phase: ScheduledSeq['phase']; numTokens: number; isSampled: boolean }[];
}

export class FakeModelRunner implements ModelRunner {
  readonly numKvBlocks: number;
  readonly blockSize: number;
  readonly maxModelLen: number;
  readonly vocabSize: number;
  readonly maxPromptLogprobTokensPerStep?: number;
  readonly steps: StepRecord[] = [];
  isReleased = false;

  private readonly stepDelayMs: number;
  private readonly script: FakeModelRunnerOptions['script'];
  private readonly failAtStepId: number | undefined;
  private readonly kvTokens: Int32Array;
  private readonly isWritten: Uint8Array;
  private contextScratch = new Int32Array(0);
  private hashScratch = new Uint32Array(0);

  constructor(options: FakeModelRunnerOptions) {
    this.numKvBlocks = options.numKvBlocks;
    this.blockSize = options.blockSize ?? 16;
    this.maxModelLen = options.maxModelLen ?? 4096;
    this.vocabSize = options.vocabSize ?? 1000;
    this.stepDelayMs = options.stepDelayMs ?? 0;
    this.script = options.script;
    this.failAtStepId = options.failAtStepId;
    this.maxPromptLogprobTokensPerStep = options.maxPromptLogprobTokensPerStep;
    this.kvTokens = new Int32Array(this.numKvBlocks * this.blockSize);
    this.isWritten = new Uint8Array(this.numKvBlocks * this.blockSize);
  }

  async execute(batch: ScheduledBatch): Promise<StepOutput> {
    if (this.isReleased) throw new EngineError('DAWN_ERR_ENGINE_RUNNER', 'fake runner: execute after release');
    if (this.stepDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.stepDelayMs));
    else await Promise.resolve();
    if (batch.stepId === this.failAtStepId)
      throw new EngineError('DAWN_ERR_ENGINE_RUNNER', `fake runner: step ${batch.stepId} fails on purpose`);
    const cap = this.maxPromptLogprobTokensPerStep;
    const numScored = batch.entries.reduce(
      (n, e) => n + (e.phase === 'prefill' && e.promptLogprobs !== null ? e.tokenIds.length : 0),
      0,
    );
    if (cap !== undefined && numScored > cap)
      throw new EngineError(
        'DAWN_ERR_ENGINE_BATCH',
        `fake runner: step ${batch.stepId} reads back ${numScored} prompt-logprob rows, at most ${cap}`,
      );
    // As in a real forward pass, every new token's KV is written before any attention reads. Two writes to one
    // slot in a step would race on a GPU: a block handed to two sequences at once.
    const written = new Map<number, number>();
    for (const entry of batch.entries) {
      for (const slot of entry.slotMapping) {
        const other = written.get(slot);
        if (other !== undefined)
          throw new EngineError(
            'DAWN_ERR_ENGINE_BATCH',
            `fake runner: step ${batch.stepId}: seqs ${other} and ${entry.seqId} both write KV slot ${slot}`,
          );
        written.set(slot, entry.seqId);
      }
    }
    for (const entry of batch.entries) this.writeKv(entry);
    const sampled: SampledToken[] = [];
    const promptLogprobs: PromptLogprobsOutput[] = [];
    for (const entry of batch.entries) {
      const context = this.readContext(entry);
      if (this.hashScratch.length < context.length + 1) this.hashScratch = new Uint32Array(context.length * 2 + 1);
      const prefixHashes = prefixHashesOf(context, this.hashScratch);
      if (entry.sample !== null) sampled.push(this.sample(entry.seqId, context, prefixHashes, entry.sample));
      if (entry.phase === 'prefill' && entry.promptLogprobs !== null) {
        const { numTop, targetTokenIds } = entry.promptLogprobs;
        const first = entry.positions[0] + 1;
        const logprobs = targetTokenIds.map((t, i) => fakeLogprobs(prefixHashes[first + i], t, numTop, this.vocabSize));
        promptLogprobs.push({ seqId: entry.seqId, logprobs });
      }
    }
    this.steps.push({
      stepId: batch.stepId,
      entries: batch.entries.map((e) => ({
        seqId: e.seqId,
        phase: e.phase,
        numTokens: e.tokenIds.length,
        isSampled: e.sample !== null,
      })),
    });
    return { sampled, promptLogprobs };
  }

  async release(): Promise<void> {
    this.isReleased = true;
  }

  /** The greedy next token after `context`, computed directly (what the engine should produce). */
  expectedGreedy(context: readonly number[]): number {
    return fnvTokens(context) % this.vocabSize;
  }

  private writeKv(entry: ScheduledSeq): void {
    const where = `step entry for seq ${entry.seqId}`;
    const n = entry.tokenIds.length;
    if (n === 0 || entry.positions.length !== n || entry.slotMapping.length !== n)
      throw new EngineError(
        'DAWN_ERR_ENGINE_BATCH',
        `fake runner: ${where} has ${n} tokens, ${entry.positions.length} positions, ${entry.slotMapping.length} slots; expected equal and ≥ 1`,
      );
    if (entry.positions.some((p, i) => p !== entry.positions[0] + i))
      throw new EngineError(
        'DAWN_ERR_ENGINE_BATCH',
        `fake runner: ${where}: positions [${entry.positions.join(', ')}] are not consecutive`,
      );
    if (entry.positions[n - 1] + 1 !== entry.contextLen)
      throw new EngineError(
        'DAWN_ERR_ENGINE_BATCH',
        `fake runner: ${where}: contextLen ${entry.contextLen}, expected last position + 1 = ${entry.positions[n - 1] + 1}`,
      );
    for (let i = 0; i < n; i++) {
      const pos = entry.positions[i];
      const expected = this.slotOf(entry, pos);
      if (entry.slotMapping[i] !== expected)
        throw new EngineError(
          'DAWN_ERR_ENGINE_BATCH',
          `fake runner: ${where}: position ${pos} maps to slot ${entry.slotMapping[i]}, expected ${expected} from block table [${entry.blockTable.join(', ')}]`,
        );
      this.kvTokens[expected] = entry.tokenIds[i];
      this.isWritten[expected] = 1;
    }
  }

  /**
   * The tokens at positions 0 … contextLen-1, read back from the KV cache through the block table, into a scratch
   * buffer reused across calls (valid until the next call; little garbage, so GC pauses do not land in the
   * engine's measured step time).
   */
  private readContext(entry: ScheduledSeq): Int32Array {
    if (this.contextScratch.length < entry.contextLen) this.contextScratch = new Int32Array(entry.contextLen * 2);
    const context = this.contextScratch.subarray(0, entry.contextLen);
    for (let pos = 0; pos < entry.contextLen; pos++) {
      const slot = this.slotOf(entry, pos);
      if (!this.isWritten[slot])
        throw new EngineError(
          'DAWN_ERR_ENGINE_BATCH',
          `fake runner: seq ${entry.seqId} reads position ${pos} from slot ${slot}, which was never written`,
        );
      context[pos] = this.kvTokens[slot];
    }
    return context;
  }

  private slotOf(entry: ScheduledSeq, pos: number): number {
    const block = entry.blockTable[Math.floor(pos / this.blockSize)];
    if (block === undefined || block < 0 || block >= this.numKvBlocks)
      throw new EngineError(
        'DAWN_ERR_ENGINE_BATCH',
        `fake runner: seq ${entry.seqId} position ${pos} has no valid block (table [${entry.blockTable.join(', ')}], ${this.numKvBlocks} blocks)`,
      );
    return block * this.blockSize + (pos % this.blockSize);
  }

  private sample(seqId: number, context: Int32Array, prefixHashes: Uint32Array, spec: SampleSpec): SampledToken {
    const contextHash = prefixHashes[context.length];
    const isGreedy = spec.params.temperature === 0;
    const h = isGreedy ? contextHash : mix(contextHash, spec.seed, spec.outputIndex);
    const scripted = isGreedy && this.script !== undefined ? this.script(Array.from(context)) : null;
    let tokenId = scripted ?? h % this.vocabSize;
    while (spec.suppressTokenIds.includes(tokenId)) tokenId = (tokenId + 1) % this.vocabSize;
    const logprobs = spec.numLogprobs === null ? null : fakeLogprobs(h, tokenId, spec.numLogprobs, this.vocabSize);
    return { seqId, tokenId, logprobs };
  }
}

const FNV_OFFSET = 0x811c9dc5;

function fnvStep(h: number, tokenId: number): number {
  let x = h;
  for (let shift = 0; shift < 32; shift += 8) x = Math.imul(x ^ ((tokenId >>> shift) & 0xff), 0x01000193) >>> 0;
  return x;
}

function fnvTokens(tokens: readonly number[]): number {
  return tokens.reduce(fnvStep, FNV_OFFSET);
}

/** hashes[k] = hash of the first k tokens, for k = 0 … length, written into `out`. */
function prefixHashesOf(tokens: Int32Array, out: Uint32Array): Uint32Array {
  const hashes = out.subarray(0, tokens.length + 1);
  hashes[0] = FNV_OFFSET;
  for (let i = 0; i < tokens.length; i++) hashes[i + 1] = fnvStep(hashes[i], tokens[i]);
  return hashes;
}

/** Folds the seed (any safe integer) and the output index into a context hash. */
function mix(h: number, seed: number, outputIndex: number): number {
  const seedLow = seed >>> 0;
  const seedHigh = Math.floor(seed / 2 ** 32) >>> 0;
  return [seedLow, seedHigh, outputIndex].reduce(fnvStep, h);
}

/** Deterministic stand-in numbers: the context's favourite token gets -0.1, every other token less. */
function fakeLogprobs(h: number, tokenId: number, numTop: number, vocabSize: number): TokenLogprobs {
  const favourite = h % vocabSize;
  const top = Array.from({ length: numTop }, (_, i) => ({ tokenId: (favourite + i) % vocabSize, logprob: -0.1 - i }));
  const offset = (tokenId - favourite + vocabSize) % vocabSize;
  return { tokenId, logprob: -0.1 - offset, rank: offset + 1, top };
}

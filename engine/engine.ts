// The generation loop. addRequest checks a request, queues its sequences and returns its event stream; one loop
// then steps while work exists: schedule → await the model runner → commit → emit events, yielding to the event
// loop (setImmediate) between steps so HTTP keeps flowing. CPU time per step (everything but the await) is measured.
import { ApiError, EngineError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { BlockManager } from './block_manager.js';
import type { TokenTextDecoder } from './detokenizer.js';
import { checkTokenFinish, type Finish } from './finish_check.js';
import { EngineMetrics, type MetricsSnapshot } from './metrics.js';
import type { ModelRunner, StepOutput } from './model_runner.js';
import { type OutputProcessor, TokenIdOutputProcessor } from './output_processor.js';
import { validateRequest } from './request_checks.js';
import type { EngineRequest, TokenLogprobs } from './request.js';
import { RequestState } from './request_state.js';
import { RequestStream } from './request_stream.js';
import type { ScheduledBatch } from './scheduled_batch.js';
import { Scheduler } from './scheduler.js';
import { Sequence } from './sequence.js';
import { TextOutputProcessor } from './text_output_processor.js';

const log = logger('engine');

export interface EngineOptions {
  runner: ModelRunner;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Requests queued and never scheduled yet; one more is refused with 429. */
  maxWaiting: number;
  /** The model's EOS ids (from generation_config). */
  eosTokenIds: readonly number[];
  /** Share KV blocks between requests with equal prefixes (and between n > 1 siblings); default true. */
  enablePrefixCaching?: boolean;
  /** Turns token ids into text and finds stop strings; default: a TextOutputProcessor over `tokenizer` if given,
   * else TokenIdOutputProcessor. */
  outputProcessor?: OutputProcessor;
  /** The model's tokenizer, for text deltas and stop strings (models/common/tokenizer.ts's Tokenizer fits). */
  tokenizer?: TokenTextDecoder;
}

/** 429: the queue is full. `retryAfterS` is for the Retry-After header. */
export class QueueFullError extends ApiError {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(429, 'DAWN_ERR_API_QUEUE_FULL', message, { type: 'rate_limit_error' });
  }
}

export class LLMEngine {
  /** Prompt + output limit: the runner's, or less when the KV pool holds fewer tokens. */
  readonly maxModelLen: number;
  /** CPU time of the latest step, milliseconds. */
  lastStepCpuMs = 0;

  private readonly runner: ModelRunner;
  private readonly blocks: BlockManager;
  private readonly scheduler: Scheduler;
  private readonly processor: OutputProcessor;
  private readonly metrics = new EngineMetrics();
  private readonly maxWaiting: number;
  private readonly eosTokenIds: readonly number[];
  private readonly requests = new Map<string, RequestState>();
  private readonly seqs = new Map<number, Sequence>();
  private nextSeqId = 0;
  private loop: Promise<void> = Promise.resolve();
  private isLooping = false;
  /** When the runner's latest step returned, while the loop runs; null before the first step of a busy period. */
  private lastResumedMs: number | null = null;
  private isAccepting = true;

  constructor(options: EngineOptions) {
    const { runner } = options;
    this.runner = runner;
    const { enablePrefixCaching, maxNumSeqs, maxNumBatchedTokens, eosTokenIds } = options;
    this.blocks = new BlockManager(runner.numKvBlocks, runner.blockSize, { enablePrefixCaching });
    this.scheduler = new Scheduler(this.blocks, {
      maxNumSeqs,
      maxNumBatchedTokens,
      eosTokenIds,
      maxPromptLogprobTokens: runner.maxPromptLogprobTokensPerStep,
    });
    this.processor =
      options.outputProcessor ??
      (options.tokenizer === undefined ? new TokenIdOutputProcessor() : new TextOutputProcessor(options.tokenizer));
    if (!Number.isSafeInteger(options.maxWaiting) || options.maxWaiting < 0)
      throw new EngineError(
        'DAWN_ERR_ENGINE_CONFIG',
        `engine: maxWaiting must be an integer ≥ 0, got ${options.maxWaiting}`,
      );
    this.maxWaiting = options.maxWaiting;
    this.eosTokenIds = options.eosTokenIds;
    const kvTokens = runner.numKvBlocks * runner.blockSize;
    this.maxModelLen = Math.min(runner.maxModelLen, kvTokens);
    if (kvTokens < runner.maxModelLen)
      log.warn(`max model length lowered from ${runner.maxModelLen} to ${kvTokens}: the KV pool holds no more tokens`);
  }

  /** Queues a request; its events arrive on the returned stream. Throws ApiError (400, 429, 503) synchronously. */
  addRequest(request: EngineRequest): RequestStream {
    if (!this.isAccepting)
      throw new ApiError(503, 'DAWN_ERR_API_SHUTTING_DOWN', 'engine: shutting down, no new requests are accepted');
    if (this.requests.has(request.requestId))
      throw new EngineError('DAWN_ERR_ENGINE_DUPLICATE_REQUEST', `engine: request id "${request.requestId}" is in use`);
    const maxTokens = validateRequest(request, this.maxModelLen, this.runner.vocabSize);
    const numQueued = [...this.requests.values()].filter((r) => r.isQueued).length;
    if (numQueued >= this.maxWaiting) {
      const retryAfterS = this.retryAfterS();
      throw new QueueFullError(
        `engine: ${numQueued} requests are waiting, the limit (max_waiting) is ${this.maxWaiting}; retry after ${retryAfterS} s`,
        retryAfterS,
      );
    }
    const seqs = this.makeSequences(request, maxTokens);
    const stream = new RequestStream(request.requestId, () => this.abort(request.requestId));
    const state = new RequestState(request.requestId, seqs, stream, request.arrivalMs ?? performance.now());
    this.requests.set(request.requestId, state);
    for (const seq of seqs) {
      this.seqs.set(seq.seqId, seq);
      this.scheduler.add(seq);
    }
    this.ensureLoop();
    return stream;
  }

  /** Ends a request now (client gone): its blocks are freed at once, its stream gets 'abort' and done. */
  abort(requestId: string): boolean {
    const state = this.requests.get(requestId);
    if (state === undefined) return false;
    const now = performance.now();
    for (const seq of state.seqs) {
      if (seq.isFinished) continue;
      this.finishSeq(seq, { reason: 'abort', stopReason: null });
      state.stream.push(state.delta(seq, [], '', { reason: 'abort', stopReason: null }, now));
    }
    this.completeRequest(state, now);
    return true;
  }

  /** Stops accepting requests, lets in-flight ones finish for up to graceMs, aborts the rest, releases the runner. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.isAccepting) return this.loop;
    this.isAccepting = false;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.loop, grace]);
    clearTimeout(timer);
    for (const requestId of [...this.requests.keys()]) this.abort(requestId);
    await this.loop;
    await this.runner.release();
  }

  get numUnfinishedRequests(): number {
    return this.requests.size;
  }

  metricsSnapshot(): MetricsSnapshot {
    const gauges = {
      numRunning: this.scheduler.running.length,
      numWaiting: this.scheduler.waiting.length,
      kvUsage: this.blocks.usage,
    };
    const mm = this.runner.multiModalCacheStats?.() ?? { queries: 0, hits: 0 };
    return this.metrics.snapshot(gauges, {
      prefixCacheQueryTokens: this.blocks.numQueryTokens,
      prefixCacheHitTokens: this.blocks.numHitTokens,
      mmCacheQueries: mm.queries,
      mmCacheHits: mm.hits,
      numPreemptions: this.scheduler.numPreemptions,
    });
  }

  /** KV pool capacity in tokens (for the server's "GPU KV cache size: N tokens" line). */
  get kvCacheSizeTokens(): number {
    return this.blocks.numBlocks * this.blocks.blockSize;
  }

  /** Free KV blocks now (for tests and the server's health view). */
  get numFreeKvBlocks(): number {
    return this.blocks.numFreeBlocks;
  }

  private makeSequences(request: EngineRequest, maxTokens: number): Sequence[] {
    const { params } = request;
    const seqs: Sequence[] = [];
    for (let index = 0; index < params.n; index++) {
      seqs.push(
        new Sequence({
          seqId: this.nextSeqId++,
          requestId: request.requestId,
          index,
          promptTokenIds: request.promptTokenIds,
          params,
          // Drawn once and kept, so a recompute after preemption samples the same tokens.
          seed: params.seed === null ? Math.floor(Math.random() * 2 ** 31) : params.seed + index,
          maxTokens,
          mmInputs: request.mmInputs,
          // Siblings wait for the first one's prompt to be cached instead of computing it again.
          prefixLeader: index === 0 || !this.blocks.enablePrefixCaching ? null : seqs[0],
        }),
      );
    }
    return seqs;
  }

  private ensureLoop(): void {
    if (this.isLooping) return;
    this.isLooping = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    try {
      await yieldToEventLoop();
      while (this.scheduler.hasWork) {
        await this.step();
        await yieldToEventLoop();
      }
    } catch (error) {
      // A bug in the engine itself: fail every request rather than hang them.
      log.error(`engine loop stopped: ${error instanceof Error ? error.message : String(error)}`);
      for (const state of [...this.requests.values()]) this.failRequest(state, error);
    } finally {
      this.isLooping = false;
      this.lastResumedMs = null;
    }
  }

  private async step(): Promise<void> {
    const start = performance.now();
    const batch = this.scheduler.schedule();
    this.markScheduled(batch, start);
    let cpuMs = performance.now() - start;
    if (batch.entries.length > 0) {
      let output: StepOutput;
      const beforeExecute = performance.now();
      if (this.lastResumedMs !== null) this.metrics.runnerIdle.observe((beforeExecute - this.lastResumedMs) / 1000);
      try {
        output = await this.runner.execute(batch);
        checkStepOutput(batch, output);
      } catch (error) {
        this.lastResumedMs = null;
        this.failBatch(batch, error);
        return;
      }
      const resumed = performance.now();
      this.lastResumedMs = resumed;
      this.scheduler.commit(batch, this.seqs);
      this.emitOutputs(batch, output, resumed);
      cpuMs += performance.now() - resumed;
    }
    this.lastStepCpuMs = cpuMs;
    this.metrics.numSteps++;
    this.metrics.stepCpu.observe(cpuMs / 1000);
    this.metrics.maxStepCpuS = Math.max(this.metrics.maxStepCpuS, cpuMs / 1000);
    if (batch.numTokens > 0) this.metrics.iterationTokens.observe(batch.numTokens);
  }

  private markScheduled(batch: ScheduledBatch, now: number): void {
    for (const entry of batch.entries) {
      const seq = this.seqs.get(entry.seqId)!;
      const state = this.requests.get(seq.requestId)!;
      if (!state.isQueued) continue;
      state.firstScheduledMs = now;
      state.cachedPromptTokens = seq.numCachedTokens;
      this.metrics.requestQueueTime.observe((now - state.arrivalMs) / 1000);
    }
  }

  private emitOutputs(batch: ScheduledBatch, output: StepOutput, now: number): void {
    const sampled = new Map(output.sampled.map((s) => [s.seqId, s]));
    const promptLogprobs = new Map(output.promptLogprobs.map((p) => [p.seqId, p.logprobs]));
    for (const entry of batch.entries) {
      const seq = this.seqs.get(entry.seqId);
      if (seq === undefined || seq.status !== 'running') continue; // aborted while the step ran
      seq.promptLogprobs.push(...(promptLogprobs.get(seq.seqId) ?? []));
      const token = sampled.get(seq.seqId);
      if (token !== undefined) this.acceptToken(seq, token.tokenId, token.logprobs, now);
    }
  }

  private acceptToken(seq: Sequence, tokenId: number, logprobs: TokenLogprobs | null, now: number): void {
    const state = this.requests.get(seq.requestId)!;
    seq.appendToken(tokenId);
    if (logprobs !== null) seq.outputLogprobs.push(logprobs);
    const isFirstOfRequest = state.firstTokenMs === null;
    const prevMs = state.recordToken(seq, now);
    if (isFirstOfRequest) {
      this.metrics.timeToFirstToken.observe((now - state.arrivalMs) / 1000);
      this.metrics.promptTokens += seq.numPromptTokens;
    }
    if (prevMs !== null) this.metrics.interTokenLatency.observe((now - prevMs) / 1000);
    this.metrics.generationTokens++;
    const tokenFinish = checkTokenFinish(seq, tokenId, this.eosTokenIds, this.maxModelLen);
    const processed = this.processor.onTokens(seq, [tokenId], tokenFinish);
    // A stop string found in this token's text wins over EOS or length on the same token, as in vLLM.
    const finish: Finish | null =
      processed.finished === 'stop' ? { reason: 'stop', stopReason: processed.stopString ?? null } : tokenFinish;
    if (finish !== null) this.finishSeq(seq, finish);
    state.stream.push(state.delta(seq, [tokenId], processed.textDelta, finish, now));
    if (state.isFinished) this.completeRequest(state, now);
  }

  private finishSeq(seq: Sequence, finish: Finish): void {
    this.scheduler.finish(seq, finish.reason);
    this.processor.release(seq);
  }

  /** All sequences have finished: the done event, the metrics, and the request is forgotten. */
  private completeRequest(state: RequestState, now: number): void {
    const done = state.done(now);
    state.stream.push(done);
    state.stream.close();
    this.forget(state);
    for (const seq of state.seqs) this.metrics.requestSuccess[seq.finishReason ?? 'abort']++;
    if (state.seqs.some((s) => s.finishReason !== 'abort'))
      this.metrics.e2eRequestLatency.observe(done.timings.e2eMs / 1000);
    if (state.firstTokenMs !== null) {
      this.metrics.requestPrefillTime.observe(done.timings.prefillMs / 1000);
      this.metrics.requestDecodeTime.observe((now - state.firstTokenMs) / 1000);
    }
  }

  private failBatch(batch: ScheduledBatch, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    log.error(`step ${batch.stepId} failed in the model runner: ${message}`);
    const requestIds = new Set(batch.entries.map((e) => this.seqs.get(e.seqId)?.requestId));
    for (const requestId of requestIds) {
      const state = requestId === undefined ? undefined : this.requests.get(requestId);
      if (state !== undefined) this.failRequest(state, error);
    }
  }

  private failRequest(state: RequestState, error: unknown): void {
    for (const seq of state.seqs) {
      if (seq.isFinished) continue;
      try {
        this.finishSeq(seq, { reason: 'abort', stopReason: null });
      } catch (freeError) {
        // The block manager is inconsistent (a bug): still end the stream, or its client would wait forever.
        log.error(`freeing seq ${seq.seqId} failed: ${freeError instanceof Error ? freeError.message : freeError}`);
        seq.status = 'finished';
        seq.finishReason = 'abort';
      }
    }
    const message = error instanceof Error ? error.message : String(error);
    state.stream.fail(
      new EngineError('DAWN_ERR_ENGINE_STEP', `engine: request "${state.requestId}" failed: ${message}`, {
        cause: error,
      }),
    );
    this.forget(state);
  }

  private forget(state: RequestState): void {
    this.requests.delete(state.requestId);
    for (const seq of state.seqs) this.seqs.delete(seq.seqId);
  }

  /** Seconds until a slot is likely free: the mean request latency so far, at least 1. */
  private retryAfterS(): number {
    const { sum, count } = this.metrics.e2eRequestLatency.snapshot();
    return count === 0 ? 1 : Math.min(60, Math.max(1, Math.ceil(sum / count)));
  }
}

/** The runner returned one token per entry that samples and prompt logprobs where asked, nothing else. */
function checkStepOutput(batch: ScheduledBatch, output: StepOutput): void {
  const sampled = new Set(output.sampled.map((s) => s.seqId));
  const scored = new Map(output.promptLogprobs.map((p) => [p.seqId, p.logprobs.length]));
  const wantSampled = batch.entries.filter((e) => e.sample !== null);
  const wantScored = batch.entries.filter((e) => e.phase === 'prefill' && e.promptLogprobs !== null);
  const problems: string[] = [];
  for (const e of wantSampled) if (!sampled.has(e.seqId)) problems.push(`no sampled token for seq ${e.seqId}`);
  if (output.sampled.length !== wantSampled.length)
    problems.push(`${output.sampled.length} sampled tokens, expected ${wantSampled.length}`);
  for (const e of wantScored) {
    const want = e.phase === 'prefill' ? (e.promptLogprobs?.targetTokenIds.length ?? 0) : 0;
    const got = scored.get(e.seqId);
    if (got !== want) problems.push(`${got ?? 'no'} prompt logprobs for seq ${e.seqId}, expected ${want}`);
  }
  if (problems.length > 0)
    throw new EngineError(
      'DAWN_ERR_ENGINE_RUNNER',
      `engine: the model runner's output for step ${batch.stepId} does not match the batch: ${problems.join('; ')}`,
    );
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

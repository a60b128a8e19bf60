// The engine's own CPU cost per step, without a GPU: LLMEngine on the fake runner (whose "forward pass" is a hash
// of the context, awaited like a GPU step) at a given concurrency and input/output length. What it reports is the
// engine's per-step CPU time (scheduling, block bookkeeping, detokenization and event emission; the runner's work
// excluded), i.e. the time a real GPU step must hide or the host adds to every inter-token latency.
import { LLMEngine } from '../../engine/engine.js';
import { FakeModelRunner } from '../../engine/fake_model_runner.js';
import type { TokenTextDecoder } from '../../engine/detokenizer.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { summarize, type Summary } from './stats.js';

export interface EngineLoopOptions {
  numRequests: number;
  inputLen: number;
  outputLen: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Defaults to what the requests need at once, plus room. */
  numKvBlocks?: number;
  vocabSize?: number;
  /** Detokenize with this tokenizer (the real per-token text work); token-id text when absent. */
  tokenizer?: TokenTextDecoder;
  seed?: number;
}

export interface EngineLoopResult {
  numSteps: number;
  wallMs: number;
  outputTokens: number;
  /** Engine CPU per step, milliseconds. */
  stepCpuMs: Summary;
  /** Engine CPU per step during pure-decode steps only, milliseconds. */
  decodeStepCpuMs: Summary;
  /** Mean host time between a step's return and the next step's start (the runner idles), milliseconds. */
  runnerIdleMeanMs: number;
}

export async function benchEngineLoop(options: EngineLoopOptions): Promise<EngineLoopResult> {
  const blockSize = 16;
  const perSeqBlocks = Math.ceil((options.inputLen + options.outputLen) / blockSize);
  const runner = new FakeModelRunner({
    numKvBlocks: options.numKvBlocks ?? perSeqBlocks * Math.min(options.maxNumSeqs, options.numRequests) + 16,
    blockSize,
    maxModelLen: options.inputLen + options.outputLen + blockSize,
    vocabSize: options.vocabSize ?? 1000,
  });
  const engine = new LLMEngine({
    runner,
    maxNumSeqs: options.maxNumSeqs,
    maxNumBatchedTokens: options.maxNumBatchedTokens,
    maxWaiting: options.numRequests,
    eosTokenIds: [],
    tokenizer: options.tokenizer,
  });
  const params = createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: options.outputLen });
  const stepCpu: number[] = [];
  const decodeStepCpu: number[] = [];
  let lastSteps = 0;
  let rand = options.seed ?? 1;
  const vocab = runner.vocabSize;
  const started = performance.now();
  let outputTokens = 0;
  const requests = Array.from({ length: options.numRequests }, async (_, i) => {
    const prompt = Array.from(
      { length: options.inputLen },
      () => (rand = (rand * 1103515245 + 12345) % 2 ** 31) % vocab,
    );
    for await (const event of engine.addRequest({ requestId: `bench-${i}`, promptTokenIds: prompt, params })) {
      if (event.type === 'delta') outputTokens += event.tokenIds.length;
      // One reading per step: the first consumer to see a new step records it.
      if (runner.steps.length !== lastSteps) {
        lastSteps = runner.steps.length;
        stepCpu.push(engine.lastStepCpuMs);
        const step = runner.steps[lastSteps - 1];
        if (step.entries.every((e) => e.phase === 'decode')) decodeStepCpu.push(engine.lastStepCpuMs);
      }
    }
  });
  await Promise.all(requests);
  const wallMs = performance.now() - started;
  const snap = engine.metricsSnapshot();
  return {
    numSteps: snap.numSteps,
    runnerIdleMeanMs: snap.runnerIdleS.count === 0 ? 0 : (snap.runnerIdleS.sum / snap.runnerIdleS.count) * 1000,
    wallMs,
    outputTokens,
    stepCpuMs: summarize(stepCpu),
    decodeStepCpuMs: summarize(decodeStepCpu),
  };
}

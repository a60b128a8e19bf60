// Shared pieces of the engine suites: an engine on the fake runner, deterministic prompts, and a collector that
// turns a request's event stream into per-sequence token lists.
import { LLMEngine, type EngineOptions } from '../../engine/engine.js';
import { FakeModelRunner, type FakeModelRunnerOptions } from '../../engine/fake_model_runner.js';
import type { DoneEvent, FinishReason, RequestOutputEvent } from '../../engine/request.js';
import { createSamplingParams, type SamplingParamsInput } from '../../engine/sampling_params.js';

export const EOS = 999;

export function makeEngine(
  runnerOptions: Partial<FakeModelRunnerOptions> = {},
  engineOptions: Partial<Omit<EngineOptions, 'runner'>> = {},
): { engine: LLMEngine; runner: FakeModelRunner } {
  const runner = new FakeModelRunner({ numKvBlocks: 256, ...runnerOptions });
  const engine = new LLMEngine({
    runner,
    maxNumSeqs: 16,
    maxNumBatchedTokens: 512,
    maxWaiting: 64,
    eosTokenIds: [EOS],
    ...engineOptions,
  });
  return { engine, runner };
}

/** A prompt of `length` token ids from a small LCG, different per `salt`. */
export function makePrompt(length: number, salt: number): number[] {
  let x = salt * 7919 + 17;
  return Array.from({ length }, () => (x = (x * 1103515245 + 12345) % 2 ** 31) % 900);
}

export interface Collected {
  /** Per sequence index: the output token ids. */
  tokens: number[][];
  finishReasons: FinishReason[];
  text: string[];
  done: DoneEvent;
  events: RequestOutputEvent[];
}

export async function collect(stream: AsyncIterable<RequestOutputEvent>): Promise<Collected> {
  const tokens: number[][] = [];
  const finishReasons: FinishReason[] = [];
  const text: string[] = [];
  const events: RequestOutputEvent[] = [];
  let done: DoneEvent | null = null;
  for await (const event of stream) {
    events.push(event);
    if (event.type === 'done') {
      done = event;
      continue;
    }
    (tokens[event.index] ??= []).push(...event.tokenIds);
    text[event.index] = (text[event.index] ?? '') + event.textDelta;
    if (event.finishReason !== null) finishReasons[event.index] = event.finishReason;
  }
  if (done === null) throw new Error('stream ended without a done event');
  return { tokens, finishReasons, text, done, events };
}

let nextId = 0;

/** Adds a request with these params (ignore_eos on by default, so lengths are exact) and collects it. */
export function run(
  engine: LLMEngine,
  prompt: readonly number[],
  params: SamplingParamsInput = {},
  requestId = `req-${nextId++}`,
): Promise<Collected> {
  const sampling = createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: 8, ...params });
  return collect(engine.addRequest({ requestId, promptTokenIds: prompt, params: sampling }));
}

/** What greedy decoding must produce, computed straight from the fake runner's rule. */
export function expectedGreedy(runner: FakeModelRunner, prompt: readonly number[], numTokens: number): number[] {
  const context = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < numTokens; i++) {
    const t = runner.expectedGreedy(context);
    context.push(t);
    out.push(t);
  }
  return out;
}

// Runs one engine request for a route: adds it (errors such as 400, 429 and 503 are thrown here, before any
// byte is sent), aborts it when the client goes away (its KV blocks are freed at once), and records the outcome
// for /metrics and the log line.
// A failure inside the engine (a runner step) marks the engine dead: /health turns 503.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EngineError } from '../core/errors.js';
import type { DeltaEvent, DoneEvent, EngineRequest, TokenLogprobs } from '../engine/request.js';
import type { SamplingParams } from '../engine/sampling_params.js';
import type { MediaOptions } from './media/options.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model_host.js';
import { noteGeneration } from './request_log.js';
import type { ServingModel } from './serving_model.js';

export interface ServerContext {
  host: ModelHost;
  metrics: ServerMetrics;
  /** Where images may come from, and how many a prompt takes. */
  media: MediaOptions;
}

export type GenerationEvent = DeltaEvent | DoneEvent;

export interface Generation {
  readonly requestId: string;
  readonly params: SamplingParams;
  readonly numPromptTokens: number;
  events(): AsyncGenerator<GenerationEvent>;
}

export function startGeneration(
  ctx: ServerContext,
  model: ServingModel,
  http: { request: FastifyRequest; reply: FastifyReply },
  request: EngineRequest,
  /** Scoring only (echo with max_tokens 0): the one token computed internally is not counted as output. */
  options: { isScoringOnly?: boolean } = {},
): Generation {
  const { engine } = model;
  const stream = engine.addRequest(request);
  const { requestId, params } = request;
  let isDone = false;
  onClientGone(http.reply, () => {
    if (!isDone) engine.abort(requestId);
  });
  async function* events(): AsyncGenerator<GenerationEvent> {
    try {
      for await (const event of stream) {
        if (event.type === 'done') {
          isDone = true;
          const done = options.isScoringOnly ? { ...event, usage: { ...event.usage, completionTokens: 0 } } : event;
          noteGeneration(http.request, requestId, done);
          ctx.metrics.observeRequest(done, { n: params.n, maxTokens: params.maxTokens });
        }
        yield event;
      }
    } catch (err) {
      if (err instanceof EngineError && err.code === 'DAWN_ERR_ENGINE_STEP') ctx.host.setDead(err.message);
      throw err;
    } finally {
      if (!isDone) {
        noteGeneration(http.request, requestId, null);
        engine.abort(requestId);
      }
    }
  }
  return { requestId, params, numPromptTokens: request.promptTokenIds.length, events };
}

const goneHandlers = new WeakMap<FastifyReply, (() => void)[]>();

/** Runs `fn` if the client disconnects before the response is complete (one socket listener per reply). */
function onClientGone(reply: FastifyReply, fn: () => void): void {
  // Gone already (while the route awaited, e.g. loading images): 'close' has fired and will not again.
  if (reply.raw.destroyed && !reply.raw.writableFinished) {
    fn();
    return;
  }
  let handlers = goneHandlers.get(reply);
  if (handlers === undefined) {
    const list: (() => void)[] = [];
    handlers = list;
    goneHandlers.set(reply, list);
    // 'close' fires when the response has been sent, or earlier when the connection dropped.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) for (const handler of list) handler();
    });
  }
  handlers.push(fn);
}

/** One finished sequence, for non-streaming responses. */
export interface SequenceResult {
  index: number;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprobs[];
  finishReason: DeltaEvent['finishReason'];
  stopReason: DeltaEvent['stopReason'];
}

export interface GenerationResult {
  seqs: SequenceResult[];
  done: DoneEvent;
}

/** Waits for the whole request. */
export async function collectGeneration(gen: Generation): Promise<GenerationResult> {
  const seqs: SequenceResult[] = Array.from({ length: gen.params.n }, (_, index) => ({
    index,
    text: '',
    tokenIds: [],
    logprobs: [],
    finishReason: null,
    stopReason: null,
  }));
  let done: DoneEvent | null = null;
  for await (const event of gen.events()) {
    if (event.type === 'done') {
      done = event;
      continue;
    }
    const seq = seqs[event.index];
    seq.text += event.textDelta;
    seq.tokenIds.push(...event.tokenIds);
    if (event.logprobs !== null) seq.logprobs.push(...event.logprobs);
    if (event.finishReason !== null) {
      seq.finishReason = event.finishReason;
      seq.stopReason = event.stopReason;
    }
  }
  if (done === null)
    throw new EngineError('DAWN_ERR_ENGINE_NO_DONE', `engine: request ${gen.requestId} ended without its done event`);
  return { seqs, done };
}

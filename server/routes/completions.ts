// POST /v1/completions: prompts as a string, strings, token ids or lists of token ids; one engine request per
// prompt (choice index = prompt · n + k, as vLLM). `echo` returns the prompt before the output, and with
// `logprobs` the prompt's logprobs too (first token: null); `echo` with max_tokens 0 generates nothing, the way
// lm-eval scores multiple-choice answers (internally one token is computed and dropped, as vLLM does).
import type { FastifyReply } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { TokenLogprobs } from '../../engine/request.js';
import {
  collectGeneration,
  type Generation,
  type GenerationResult,
  type ServerContext,
  startGeneration,
} from '../generation.js';
import { LogprobFormatter } from '../logprobs.js';
import { checkStreamOptions, toSamplingParams } from '../sampling.js';
import { CompletionBody } from '../schemas.js';
import type { ServingModel } from '../serving_model.js';
import { sendSse } from '../sse.js';
import { type App, checkModelName, newRequestId, nowS, wireUsage } from './common.js';

/** OpenAI's (and vLLM's) default for the legacy completions endpoint. */
const DEFAULT_MAX_TOKENS = 16;

interface Prompt {
  ids: number[];
  /** What echo returns: the prompt as sent, or its ids decoded. */
  text: string;
}

export function registerCompletions(app: App, ctx: ServerContext): void {
  app.post('/v1/completions', { schema: { body: CompletionBody } }, async (request, reply) => {
    const arrivalMs = performance.now();
    const body = request.body;
    const modelName = checkModelName(ctx.host, body.model);
    const model = ctx.host.require();
    checkStreamOptions(body);
    if (body.suffix !== undefined && body.suffix !== null)
      throw new ApiError(400, 'DAWN_ERR_API_INVALID_PARAM', 'suffix is not currently supported', { param: 'suffix' });
    if (body.best_of !== undefined && body.best_of !== null && body.best_of !== (body.n ?? 1))
      throw new ApiError(400, 'DAWN_ERR_API_INVALID_PARAM', `best_of must equal n, got ${body.best_of}`, {
        param: 'best_of',
      });
    const prompts = readPrompts(model, body.prompt, body.add_special_tokens ?? true);
    const echo = body.echo === true;
    const requested = body.max_tokens === undefined ? DEFAULT_MAX_TOKENS : body.max_tokens;
    const echoOnly = echo && requested === 0;
    const logprobs = body.logprobs ?? null;
    const params = toSamplingParams(model, body, echoOnly ? 1 : requested, {
      logprobs,
      promptLogprobs: echo && logprobs !== null ? logprobs : null,
    });
    const id = newRequestId('cmpl');
    // Every prompt is checked and queued before anything is sent, so a bad one fails the whole request.
    const gens: Generation[] = [];
    try {
      for (const [i, prompt] of prompts.entries())
        gens.push(
          startGeneration(
            ctx,
            model,
            { request, reply },
            {
              requestId: prompts.length === 1 ? id : `${id}-${i}`,
              promptTokenIds: prompt.ids,
              params,
              arrivalMs,
            },
            { isScoringOnly: echoOnly },
          ),
        );
    } catch (err) {
      for (const gen of gens) model.engine.abort(gen.requestId);
      throw err;
    }
    const shape = new CompletionShaper(model, { id, modelName, created: nowS(), echo, echoOnly, logprobs });
    if (body.stream === true) {
      const includeUsage = body.stream_options?.include_usage === true;
      return streamCompletions(reply, shape, prompts, gens, includeUsage, body.return_token_ids === true);
    }
    const results = await Promise.all(gens.map((g) => collectGeneration(g)));
    return {
      id,
      object: 'text_completion',
      created: shape.head.created,
      model: modelName,
      choices: results.flatMap((r, i) => shape.choices(r, prompts[i], i * params.n, body.return_token_ids === true)),
      usage: wireUsage(
        results.map((r) => r.done.usage),
        echoOnly ? 0 : undefined,
      ),
    };
  });
}

function readPrompts(model: ServingModel, prompt: CompletionBody['prompt'], addSpecialTokens: boolean): Prompt[] {
  const { tokenizer } = model;
  const fromText = (text: string) => ({ ids: tokenizer.encode(text, { addSpecialTokens }), text });
  const fromIds = (ids: number[]) => ({ ids, text: tokenizer.decode(ids) });
  if (typeof prompt === 'string') return [fromText(prompt)];
  if (prompt.every((p) => typeof p === 'string')) return (prompt as string[]).map(fromText);
  if (prompt.every((p) => typeof p === 'number')) return [fromIds(prompt as number[])];
  return (prompt as number[][]).map(fromIds);
}

interface ShapeOptions {
  id: string;
  modelName: string;
  created: number;
  echo: boolean;
  echoOnly: boolean;
  logprobs: number | null;
}

/** Builds completion choices (whole, or one streamed piece at a time). */
class CompletionShaper {
  private readonly formatter: LogprobFormatter;

  constructor(
    model: ServingModel,
    readonly head: ShapeOptions,
  ) {
    this.formatter = new LogprobFormatter(model.tokenizer);
  }

  choices(result: GenerationResult, prompt: Prompt, firstIndex: number, returnTokenIds: boolean): unknown[] {
    const { echo, echoOnly } = this.head;
    return result.seqs.map((seq) => {
      const outIds = echoOnly ? [] : seq.tokenIds;
      const outLogprobs = echoOnly ? [] : seq.logprobs;
      const promptPart = echo ? this.promptPiece(prompt, result.done.promptLogprobs) : null;
      const text = (promptPart?.text ?? '') + (echoOnly ? '' : seq.text);
      let logprobs = null;
      if (this.head.logprobs !== null) {
        const output = this.formatter.completion(outIds, outLogprobs, promptPart?.text.length ?? 0);
        logprobs = promptPart?.logprobs ? concatLogprobs(promptPart.logprobs, output) : output;
      }
      return {
        index: firstIndex + seq.index,
        text,
        logprobs,
        finish_reason: echoOnly ? 'length' : seq.finishReason,
        stop_reason: echoOnly ? null : seq.stopReason,
        ...(returnTokenIds ? { prompt_token_ids: prompt.ids, token_ids: outIds } : {}),
      };
    });
  }

  promptPiece(prompt: Prompt, promptLogprobs: readonly (TokenLogprobs | null)[] | null) {
    const logprobs =
      this.head.logprobs === null || promptLogprobs === null
        ? null
        : this.formatter.completion(prompt.ids, promptLogprobs, 0);
    return { text: prompt.text, logprobs };
  }

  piece(
    index: number,
    text: string,
    tokenIds: readonly number[],
    logprobs: readonly TokenLogprobs[] | null,
    offset: number,
  ) {
    return {
      index,
      text,
      logprobs: logprobs === null ? null : this.formatter.completion(tokenIds, logprobs, offset),
    };
  }
}

function concatLogprobs(
  a: ReturnType<LogprobFormatter['completion']>,
  b: ReturnType<LogprobFormatter['completion']>,
): ReturnType<LogprobFormatter['completion']> {
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
    text_offset: [...a.text_offset, ...b.text_offset],
  };
}

function streamCompletions(
  reply: FastifyReply,
  shape: CompletionShaper,
  prompts: Prompt[],
  gens: Generation[],
  includeUsage: boolean,
  returnTokenIds: boolean,
): FastifyReply {
  const { head } = shape;
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id: head.id,
    object: 'text_completion',
    created: head.created,
    model: head.modelName,
    choices,
    ...extra,
  });
  return sendSse(reply, async function* () {
    // Prompt logprobs arrive with the request's last event: with echo + logprobs (or echo alone at max_tokens 0)
    // each prompt is answered whole, in order, so the prompt still comes first.
    if (head.echo && (head.logprobs !== null || head.echoOnly)) {
      const results = await Promise.all(gens.map((g) => collectGeneration(g)));
      for (const [i, result] of results.entries())
        for (const choice of shape.choices(result, prompts[i], i * gens[i].params.n, returnTokenIds))
          yield chunk([choice]);
      if (includeUsage)
        yield chunk([], {
          usage: wireUsage(
            results.map((r) => r.done.usage),
            head.echoOnly ? 0 : undefined,
          ),
        });
      return;
    }
    const usages = [];
    for (const [i, gen] of gens.entries()) {
      const n = gen.params.n;
      const offsets = new Map<number, number>();
      for await (const event of gen.events()) {
        if (event.type === 'done') {
          usages.push(event.usage);
          continue;
        }
        const index = i * n + event.index;
        let text = event.textDelta;
        if (!offsets.has(index)) {
          offsets.set(index, 0);
          if (head.echo) text = prompts[i].text + text;
        }
        const offset = offsets.get(index)!;
        offsets.set(index, offset + text.length);
        if (text === '' && event.finishReason === null && event.logprobs === null) continue;
        const piece = shape.piece(index, text, event.tokenIds, event.logprobs, offset);
        yield chunk([
          {
            ...piece,
            finish_reason: event.finishReason,
            stop_reason: event.stopReason,
            ...(returnTokenIds ? { token_ids: event.tokenIds } : {}),
          },
        ]);
      }
    }
    if (includeUsage) yield chunk([], { usage: wireUsage(usages) });
  });
}

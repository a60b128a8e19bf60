// Small pieces every OpenAI route uses: the model-name check, ids, timestamps, usage objects.
import { randomBytes } from 'node:crypto';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RequestUsage } from '../../engine/request.js';
import { notFoundModel } from '../errors.js';
import type { ModelHost } from '../model_host.js';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** 404 when the request names a model this server does not serve (a missing name means the default one). */
export function checkModelName(host: ModelHost, model: string | null | undefined): string {
  if (model === undefined || model === null || model === '') return host.modelName;
  if (!host.servedModelNames.includes(model)) throw notFoundModel(model);
  return model;
}

export function newRequestId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

export function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number } | null;
}

export function wireUsage(usages: readonly RequestUsage[], completionOverride?: number): WireUsage {
  const prompt = usages.reduce((s, u) => s + u.promptTokens, 0);
  const completion = completionOverride ?? usages.reduce((s, u) => s + u.completionTokens, 0);
  const cached = usages.reduce((s, u) => s + u.cachedPromptTokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

// Builds the Fastify instance: OpenAI routes, vLLM's extra endpoints, error shape, API key, request log, metrics.
// It does not listen (serve does, tests do on port 0) and does not load the model: the host moves from loading to
// ready when the caller hands it a ServingModel.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import { closeImageWorkers } from '../models/qwen3_vl_moe/processor/worker_pool.js';
import { installApiKey } from './auth.js';
import { installErrorHandlers } from './errors.js';
import { type MediaOptions, mediaOptionsFrom } from './media/options.js';
import type { ServerContext } from './generation.js';
import { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model_host.js';
import { installRequestLog } from './request_log.js';
import { registerChatCompletions } from './routes/chat_completions.js';
import type { App } from './routes/common.js';
import { registerCompletions } from './routes/completions.js';
import { registerModels } from './routes/models.js';
import { registerStatus } from './routes/status.js';
import { registerTokenize } from './routes/tokenize.js';

export interface AppOptions {
  /** --api-key values; empty: no key needed. */
  apiKeys?: readonly string[];
  /** Larger bodies get 413. Images come inline as base64, so the default is generous. */
  bodyLimitBytes?: number;
  /** Upper bound for the token-count histogram buckets (the model's max length is not known before loading). */
  maxModelLenHint?: number;
  /** Image intake (allowed paths and hosts, fetch timeout, byte cap, per-prompt limits); default: vLLM's defaults. */
  media?: MediaOptions;
}

export const DEFAULT_BODY_LIMIT_BYTES = 32 * 1024 * 1024;

export function buildApp(host: ModelHost, options: AppOptions = {}): { app: App; ctx: ServerContext } {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    // A wrong type is an error (no "5" → 5), and unknown fields stay (they are ignored, as vLLM does).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    // Keep-alive sockets with no request in flight close at once on shutdown; busy ones finish first.
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();
  const metrics = new ServerMetrics(
    host.modelName,
    options.maxModelLenHint ?? 1 << 20,
    () => host.model?.engine.metricsSnapshot() ?? null,
  );
  const ctx: ServerContext = { host, metrics, media: options.media ?? mediaOptionsFrom() };
  installErrorHandlers(app);
  installRequestLog(app);
  installApiKey(app, options.apiKeys ?? []);
  registerChatCompletions(app, ctx);
  registerCompletions(app, ctx);
  registerModels(app, ctx);
  registerTokenize(app, ctx);
  registerStatus(app, ctx);
  return { app, ctx };
}

/** After the drain, how long responses of just-finished requests may take to flush before sockets are cut. */
const FLUSH_MS = 1000;

/** SIGTERM: stop accepting connections, let in-flight requests finish for up to graceMs, abort the rest. */
export async function shutdownApp(app: App, host: ModelHost, graceMs: number): Promise<void> {
  const closed = app.close();
  await host.drain(graceMs);
  // Every request has ended now. Sockets that never sent a request (clients open spare connections) would hold
  // close() until the header timeout, so once the last responses had a moment to flush, all are closed.
  let timer: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    closed.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), FLUSH_MS))),
  ]);
  clearTimeout(timer);
  if (!flushed) app.server.closeAllConnections();
  await closed;
  await closeImageWorkers();
}

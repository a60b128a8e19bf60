// Every error leaves the server in OpenAI's shape {"error": {"message", "type", "param", "code"}}, with the status
// the openai client maps to its error classes. Client errors keep their message; anything unexpected is logged
// with its stack here and reaches the client as a plain 500 message (never a stack trace).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, DawnError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { ChatInputError } from '../models/common/chat_messages.js';

const log = logger('server');

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface ErrorResponse {
  status: number;
  body: OpenAiErrorBody;
  headers: Record<string, string>;
}

export function notFoundModel(model: string): ApiError {
  return new ApiError(404, 'DAWN_ERR_API_MODEL_NOT_FOUND', `The model \`${model}\` does not exist.`, {
    type: 'NotFoundError',
    param: 'model',
  });
}

export function unavailable(code: string, message: string): ApiError {
  return new ApiError(503, code, message, { type: 'service_unavailable' });
}

/** Maps anything thrown while serving a request to the response the client gets. */
export function toErrorResponse(err: unknown): ErrorResponse {
  const headers: Record<string, string> = {};
  const make = (status: number, message: string, type: string, param: string | null, code: string | null) => ({
    status,
    body: { error: { message, type, param, code } },
    headers,
  });
  if (err instanceof ApiError) {
    const retryAfterS = (err as { retryAfterS?: unknown }).retryAfterS;
    if (typeof retryAfterS === 'number') headers['retry-after'] = String(retryAfterS);
    return make(err.status, err.message, err.type, err.param, err.code);
  }
  // The chat template or the messages refused the conversation: the client's mistake.
  if (err instanceof ChatInputError) return make(400, err.message, 'invalid_request_error', err.param, err.code);
  const fastifyError = err as Partial<FastifyError> & { validationContext?: string };
  if (fastifyError.validation !== undefined) {
    const first = fastifyError.validation[0];
    const param = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : null;
    return make(400, fastifyError.message ?? 'invalid request', 'invalid_request_error', param, 'DAWN_ERR_API_SCHEMA');
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own client errors: body too large (413), bad JSON (400), unsupported media type (415).
    const message = status === 413 ? `request body too large: ${fastifyError.message}` : fastifyError.message;
    return make(status, message ?? 'bad request', 'invalid_request_error', null, fastifyError.code ?? null);
  }
  const message = err instanceof Error ? err.message : String(err);
  log.error(`internal error: ${err instanceof Error ? (err.stack ?? message) : message}`);
  const code = err instanceof DawnError ? err.code : 'DAWN_ERR_API_INTERNAL';
  return make(500, `internal server error (${code}); see the server log`, 'server_error', null, code);
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, headers } = toErrorResponse(err);
  return reply.status(status).headers(headers).send(body);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, _request: FastifyRequest, reply: FastifyReply) => sendError(reply, err));
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(
      reply,
      new ApiError(404, 'DAWN_ERR_API_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`, {
        type: 'NotFoundError',
      }),
    ),
  );
}

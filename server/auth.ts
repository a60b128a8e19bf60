// --api-key: every /v1 route needs `Authorization: Bearer <key>` (vLLM guards /v1 only, so probes, scrapes and
// /tokenize keep working without it). A wrong or missing key is a 401 in OpenAI's shape.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../core/errors.js';
import { sendError } from './errors.js';

export function installApiKey(app: FastifyInstance, apiKeys: readonly string[]): void {
  if (apiKeys.length === 0) return;
  const wanted = apiKeys.map((k) => Buffer.from(`Bearer ${k}`));
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1')) return;
    const header = Buffer.from(request.headers.authorization ?? '');
    if (wanted.some((w) => w.length === header.length && timingSafeEqual(w, header))) return;
    return sendError(
      reply,
      new ApiError(401, 'DAWN_ERR_API_UNAUTHORIZED', 'invalid or missing API key (send Authorization: Bearer <key>)', {
        type: 'authentication_error',
      }),
    );
  });
}

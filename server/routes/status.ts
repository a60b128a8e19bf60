// GET /health (200 when ready; 503 while loading, draining, or after the engine died), GET /metrics
// (Prometheus text), GET /version.
import { createRequire } from 'node:module';
import { sendError, unavailable } from '../errors.js';
import type { ServerContext } from '../generation.js';
import type { App } from './common.js';

export function registerStatus(app: App, ctx: ServerContext): void {
  app.get('/health', async (_request, reply) => {
    const state = ctx.host.state;
    if (state.kind === 'ready') return reply.status(200).send();
    const why = {
      loading: 'the model is still loading',
      draining: 'the server is shutting down',
      dead: `the engine has stopped: ${state.kind === 'dead' ? state.reason : ''}`,
    }[state.kind];
    return sendError(reply, unavailable('DAWN_ERR_API_UNHEALTHY', why));
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.render();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });

  app.get('/version', async () => ({ version: packageVersion() }));
}

let version: string | null = null;

/** package.json's version (found from this file, in the source tree or under dist/). */
function packageVersion(): string {
  if (version === null) {
    const require = createRequire(import.meta.url);
    const candidates = ['../../package.json', '../../../package.json'];
    for (const path of candidates) {
      try {
        const pkg = require(path) as { name?: string; version?: string };
        if (pkg.name === 'dawnllm' && typeof pkg.version === 'string') {
          version = pkg.version;
          break;
        }
      } catch {
        // try the next location
      }
    }
    version ??= 'unknown';
  }
  return version;
}

// One log line per request, when its response has gone out (or the client left): method, path, status, the
// engine request id(s), tokens in/out, TTFT and total time. Routes record their numbers with noteGeneration().
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { logger } from '../core/log.js';
import type { DoneEvent } from '../engine/request.js';

const log = logger('http');

interface GenerationNote {
  ids: string[];
  promptTokens: number;
  completionTokens: number;
  firstTokenMs: number | null;
  isAborted: boolean;
}

const notes = new WeakMap<FastifyRequest, GenerationNote>();
const startMs = new WeakMap<FastifyRequest, number>();

/** Adds one engine request's outcome to the HTTP request's log line. */
export function noteGeneration(request: FastifyRequest, requestId: string, done: DoneEvent | null): void {
  const note = notes.get(request) ?? {
    ids: [],
    promptTokens: 0,
    completionTokens: 0,
    firstTokenMs: null,
    isAborted: false,
  };
  note.ids.push(requestId);
  if (done !== null) {
    note.promptTokens += done.usage.promptTokens;
    note.completionTokens += done.usage.completionTokens;
    const ttft = done.timings.firstTokenMs;
    if (ttft !== null) note.firstTokenMs = Math.min(note.firstTokenMs ?? Infinity, ttft);
  } else note.isAborted = true;
  notes.set(request, note);
}

function line(request: FastifyRequest, status: string): string {
  const note = notes.get(request);
  const totalMs = performance.now() - (startMs.get(request) ?? performance.now());
  const parts = [`${request.method} ${request.url.split('?')[0]}`, status];
  if (note !== undefined) {
    parts.push(note.ids.join(','));
    parts.push(`tokens in=${note.promptTokens} out=${note.completionTokens}`);
    parts.push(`ttft=${note.firstTokenMs === null ? '-' : `${note.firstTokenMs.toFixed(1)}ms`}`);
  }
  parts.push(`total=${totalMs.toFixed(1)}ms`);
  return parts.join(' ');
}

export function installRequestLog(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    startMs.set(request, performance.now());
  });
  app.addHook('onResponse', async (request, reply) => {
    // Probes and scrapes would drown the generation lines; they log at debug.
    const quiet = request.url === '/health' || request.url === '/metrics';
    const text = line(request, String(reply.statusCode));
    if (quiet) log.debug(text);
    else log.info(text);
  });
  app.addHook('onRequestAbort', async (request) => log.info(line(request, 'client-closed')));
}

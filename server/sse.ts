// Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, `data: [DONE]\n\n` at the end. An error
// after the headers went out cannot change the status any more, so it travels as a chunk {"error": {...}} (the
// openai client raises it as an APIError), followed by [DONE].
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { toErrorResponse } from './errors.js';

export const SSE_DONE = 'data: [DONE]\n\n';

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** Sends the chunks `produce` yields as an SSE response; errors become an in-stream error chunk. */
export function sendSse(reply: FastifyReply, produce: () => AsyncGenerator<unknown>): FastifyReply {
  async function* lines(): AsyncGenerator<string> {
    try {
      for await (const chunk of produce()) yield sseData(chunk);
    } catch (err) {
      yield sseData(toErrorResponse(err).body);
    }
    yield SSE_DONE;
  }
  reply.header('content-type', 'text/event-stream; charset=utf-8');
  reply.header('cache-control', 'no-cache');
  reply.header('x-accel-buffering', 'no');
  return reply.send(Readable.from(lines(), { objectMode: false }));
}

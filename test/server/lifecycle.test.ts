// Client disconnects and shutdown: a stream the client abandons is aborted and its KV blocks freed; a drain lets
// in-flight requests finish within the grace period and aborts them after it, while new requests are refused.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { MODEL_NAME, startTestServer, type TestServer, waitFor } from './helpers.js';

const messages = [{ role: 'user' as const, content: 'tell me a long story' }];
let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('lifecycle', () => {
  it('a client that disconnects mid-stream aborts the request and frees its KV blocks', async () => {
    server = await startTestServer({ runner: { stepDelayMs: 10 } });
    const engine = server.model().engine;
    const totalBlocks = server.runner.numKvBlocks;
    const stream = await server.client().chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 400,
      stream: true,
      ...{ ignore_eos: true },
    });
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received++;
      if (received === 3) break; // the openai client aborts the HTTP request
    }
    expect(engine.numFreeKvBlocks).toBeLessThan(totalBlocks);
    await waitFor(() => engine.numUnfinishedRequests === 0, 5000, 'the request to be aborted');
    expect(engine.numFreeKvBlocks).toBe(totalBlocks);
    expect(engine.metricsSnapshot().requestSuccess.abort).toBe(1);
    const generated = engine.metricsSnapshot().generationTokens;
    expect(generated).toBeLessThan(100); // stopped long before max_tokens
  });

  it('a non-streaming request whose client gives up is aborted too', async () => {
    server = await startTestServer({ runner: { stepDelayMs: 10 } });
    const engine = server.model().engine;
    const controller = new AbortController();
    const request = server
      .client()
      .chat.completions.create(
        { model: MODEL_NAME, messages, max_tokens: 400, ...{ ignore_eos: true } },
        { signal: controller.signal },
      );
    await waitFor(() => engine.metricsSnapshot().generationTokens >= 3, 5000, 'generation to start');
    controller.abort();
    await expect(request).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await waitFor(() => engine.numUnfinishedRequests === 0, 5000, 'the request to be aborted');
    expect(engine.numFreeKvBlocks).toBe(server.runner.numKvBlocks);
    expect(engine.metricsSnapshot().generationTokens).toBeLessThan(100);
  });

  it('drain: in-flight requests finish within the grace period; new ones are refused', async () => {
    server = await startTestServer({ runner: { stepDelayMs: 10 } });
    const client = server.client();
    const inflight = client.chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 20,
      ...{ ignore_eos: true },
    });
    await waitFor(() => server!.model().engine.numUnfinishedRequests === 1, 5000, 'the request to start');
    const shutdown = server.shutdown(10_000);
    await waitFor(() => server!.host.state.kind === 'draining', 1000, 'draining');
    const refused = await server.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { messages } });
    expect(refused.statusCode).toBe(503);
    const res = await inflight;
    expect(res.choices[0].finish_reason).toBe('length');
    expect(res.usage!.completion_tokens).toBe(20);
    await shutdown;
    expect(server.runner.isReleased).toBe(true);
    await expect(client.chat.completions.create({ model: MODEL_NAME, messages })).rejects.toBeInstanceOf(
      OpenAI.APIConnectionError,
    );
  });

  it('drain: requests still running when the grace period ends are aborted (finish_reason abort)', async () => {
    server = await startTestServer({ runner: { stepDelayMs: 10 } });
    const stream = await server.client().chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 400,
      stream: true,
      ...{ ignore_eos: true },
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const started = Date.now();
    const shutdown = server.shutdown(200);
    const finishes = [];
    for (let r = await it.next(); !r.done; r = await it.next())
      for (const ch of r.value.choices) if (ch.finish_reason) finishes.push(ch.finish_reason);
    await shutdown;
    expect(finishes).toEqual(['abort']);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(server.runner.isReleased).toBe(true);
  });
});

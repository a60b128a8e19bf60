// Every error status the server returns, each in OpenAI's shape and mapped by the openai client to its class.
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../core/errors.js';
import { MODEL_NAME, startTestServer, type TestServer, waitFor } from './helpers.js';

const messages = [{ role: 'user' as const, content: 'hi' }];
let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

function expectOpenAiShape(err: InstanceType<typeof OpenAI.APIError>, status: number): void {
  expect(err.status).toBe(status);
  const body = err.error as { message: string; type: string; param: unknown; code: unknown };
  expect(typeof body.message).toBe('string');
  expect(typeof body.type).toBe('string');
  expect(body).toHaveProperty('param');
  expect(body).toHaveProperty('code');
  expect(body.message).not.toMatch(/\n\s+at /); // no stack trace
}

describe('error statuses', () => {
  it('400: wrong types (no coercion), out-of-range values, and a prompt over the context', async () => {
    server = await startTestServer({ runner: { maxModelLen: 64 } });
    const client = server.client();
    const wrongType = await apiError(
      client.chat.completions.create({ model: MODEL_NAME, messages, ...{ temperature: '0.5' } } as never),
    );
    expectOpenAiShape(wrongType, 400);
    expect(wrongType).toBeInstanceOf(OpenAI.BadRequestError);
    expect(wrongType.param).toBe('temperature');

    const range = await apiError(client.chat.completions.create({ model: MODEL_NAME, messages, temperature: 5 }));
    expectOpenAiShape(range, 400);
    expect(range.message).toContain('temperature must be in [0, 2], got 5.0');
    expect(range.param).toBe('temperature');

    const long = await apiError(
      client.completions.create({ model: MODEL_NAME, prompt: 'word '.repeat(100), max_tokens: 4 }),
    );
    expectOpenAiShape(long, 400);
    expect(long.message).toContain('maximum context length is 64 tokens');

    const zero = await apiError(client.completions.create({ model: MODEL_NAME, prompt: 'x', max_tokens: 0 }));
    expect(zero.status).toBe(400);
    expect(zero.param).toBe('max_tokens');

    const streamOptions = await apiError(
      client.chat.completions.create({ model: MODEL_NAME, messages, stream_options: { include_usage: true } }),
    );
    expect(streamOptions.status).toBe(400);
    expect(streamOptions.param).toBe('stream_options');

    const role = await apiError(
      client.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'robot', content: 'x' }] } as never),
    );
    expectOpenAiShape(role, 400);
    expect(role.message).toContain('unknown role "robot"');

    const badJson = await fetch(`${server.baseURL}/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"prompt": ',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { message: string } }).error.message).toMatch(/JSON/i);

    // Unknown fields are ignored, as vLLM does.
    const ok = await client.chat.completions.create({
      model: MODEL_NAME,
      messages,
      max_tokens: 1,
      ...{ made_up_field: 1 },
    });
    expect(ok.choices).toHaveLength(1);
  });

  it('401: a missing or wrong API key on /v1; /health needs none', async () => {
    server = await startTestServer({ app: { apiKeys: ['sekrit'] } });
    const bad = await apiError(server.client({ apiKey: 'nope' }).models.list());
    expectOpenAiShape(bad, 401);
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
    const models = await server.client({ apiKey: 'sekrit' }).models.list();
    expect(models.data[0].id).toBe(MODEL_NAME);
    const health = await fetch(server.baseURL.replace('/v1', '/health'));
    expect(health.status).toBe(200);
  });

  it('404: an unknown model and an unknown route', async () => {
    server = await startTestServer();
    const err = await apiError(server.client().chat.completions.create({ model: 'gpt-4', messages }));
    expectOpenAiShape(err, 404);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.message).toContain('The model `gpt-4` does not exist.');
    // The alias from --served-model-name works.
    const ok = await server.client().chat.completions.create({ model: 'alias-model', messages, max_tokens: 1 });
    expect(ok.model).toBe('alias-model');
    const route = await fetch(server.baseURL + '/nothing-here');
    expect(route.status).toBe(404);
    expect(((await route.json()) as { error: { type: string } }).error.type).toBe('NotFoundError');
  });

  it('413: a body over the limit', async () => {
    server = await startTestServer({ app: { bodyLimitBytes: 2048 } });
    const err = await apiError(
      server.client().completions.create({ model: MODEL_NAME, prompt: 'x'.repeat(5000), max_tokens: 1 }),
    );
    expectOpenAiShape(err, 413);
    expect(err.message).toContain('too large');
  });

  it('429 with Retry-After when the waiting queue is full', async () => {
    server = await startTestServer({
      runner: { stepDelayMs: 20 },
      serving: { maxNumSeqs: 1, maxWaitingRequests: 1 },
    });
    const client = server.client();
    const long = { model: MODEL_NAME, messages, max_tokens: 60, temperature: 0, ...{ ignore_eos: true } };
    // One running (its first chunk arrived, so it was scheduled), one waiting, then one too many.
    const running = await client.chat.completions.create({ ...long, stream: true });
    const it = running[Symbol.asyncIterator]();
    await it.next();
    const waiting = client.chat.completions.create(long);
    await waitFor(() => server!.model().engine.metricsSnapshot().numWaiting === 1, 5000, 'a waiting request');
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(long),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('rate_limit_error');
    const viaClient = await apiError(client.chat.completions.create(long));
    expect(viaClient).toBeInstanceOf(OpenAI.RateLimitError);
    await it.return!();
    await waiting;
  });

  it('503 while loading (and /health 503), then 200 once loaded', async () => {
    server = await startTestServer({ isLoading: true });
    const health = () => fetch(server!.baseURL.replace('/v1', '/health')).then((r) => r.status);
    expect(await health()).toBe(503);
    const err = await apiError(server.client().chat.completions.create({ model: MODEL_NAME, messages }));
    expectOpenAiShape(err, 503);
    expect(err.message).toContain('loading');
    server.load();
    expect(await health()).toBe(200);
    const ok = await server.client().chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 2 });
    expect(ok.choices[0].message.role).toBe('assistant');
  });

  it('500 without a stack trace when the runner fails; the engine is then dead: /health and requests 503', async () => {
    server = await startTestServer();
    server.runner.execute = async () => {
      throw new EngineError('DAWN_ERR_TEST_DEVICE_LOST', 'device lost (simulated)');
    };
    const err = await apiError(server.client().chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 2 }));
    expectOpenAiShape(err, 500);
    expect(err.message).not.toContain('engine.ts');
    const health = await fetch(server.baseURL.replace('/v1', '/health'));
    expect(health.status).toBe(503);
    const after = await apiError(server.client().chat.completions.create({ model: MODEL_NAME, messages }));
    expect(after.status).toBe(503);
    expect(after.message).toContain('engine has stopped');
  });
});

// A tiny OpenAI-compatible stand-in for `dawnllm bench serve` tests: GET /v1/models, GET /metrics and a streaming
// POST /v1/completions that sends max_tokens one-token chunks `tokenDelayMs` apart (the first after
// `firstTokenDelayMs`), then a usage chunk and [DONE]. It records what it was sent and how many streams overlapped.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubOptions {
  firstTokenDelayMs?: number;
  tokenDelayMs?: number;
  /** Answer these request numbers (0-based, in arrival order) with HTTP 500. */
  failRequests?: readonly number[];
  /** Split every SSE event over two socket writes (tests the client's buffering). */
  splitEvents?: boolean;
  /** Leave the usage chunk out (the client must count chunks). */
  noUsage?: boolean;
}

export interface StubServer {
  baseUrl: string;
  bodies: Record<string, unknown>[];
  arrivalsMs: number[];
  maxInFlight: number;
  close: () => Promise<void>;
}

export async function startStub(options: StubOptions = {}): Promise<StubServer> {
  const firstDelay = options.firstTokenDelayMs ?? 5;
  const tokenDelay = options.tokenDelayMs ?? 2;
  let inFlight = 0;
  let steps = 0;
  const stub: StubServer = {
    baseUrl: '',
    bodies: [],
    arrivalsMs: [],
    maxInFlight: 0,
    close: async () => undefined,
  };
  const server: Server = createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub-model', object: 'model' }] }));
      return;
    }
    if (req.method === 'GET' && req.url === '/metrics') {
      res.end(
        [
          '# TYPE dawnllm:engine_step_cpu_seconds histogram',
          `dawnllm:engine_step_cpu_seconds_sum{model_name="stub"} ${steps * 0.0005}`,
          `dawnllm:engine_step_cpu_seconds_count{model_name="stub"} ${steps}`,
          `vllm:num_preemptions_total{model_name="stub"} ${steps > 0 ? 3 : 0}`,
          '',
        ].join('\n'),
      );
      return;
    }
    const index = stub.bodies.length;
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    stub.bodies.push(body);
    stub.arrivalsMs.push(performance.now());
    if (options.failRequests?.includes(index)) {
      res.statusCode = 500;
      res.end(JSON.stringify({ error: { message: 'stub failure' } }));
      return;
    }
    inFlight++;
    stub.maxInFlight = Math.max(stub.maxInFlight, inFlight);
    res.setHeader('content-type', 'text/event-stream');
    const send = async (payload: string) => {
      const event = `data: ${payload}\n\n`;
      if (!options.splitEvents) return void res.write(event);
      const cut = Math.floor(event.length / 2);
      res.write(event.slice(0, cut));
      await sleep(0);
      res.write(event.slice(cut));
    };
    const maxTokens = body.max_tokens as number;
    await sleep(firstDelay);
    for (let i = 0; i < maxTokens; i++) {
      if (i > 0) await sleep(tokenDelay);
      steps++;
      await send(JSON.stringify({ id: 'cmpl-1', object: 'text_completion', choices: [{ index: 0, text: ` t${i}` }] }));
    }
    if (!options.noUsage) {
      const promptLen = (body.prompt as number[]).length;
      await send(
        JSON.stringify({
          id: 'cmpl-1',
          choices: [],
          usage: { prompt_tokens: promptLen, completion_tokens: maxTokens, total_tokens: promptLen + maxTokens },
        }),
      );
    }
    await send('[DONE]');
    inFlight--;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () => new Promise((resolve) => server.close(() => resolve()));
  return stub;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

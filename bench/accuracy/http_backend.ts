// A checkpoint behind a running OpenAI-compatible server (dawnllm serve or vLLM): the chat prompt comes from
// POST /tokenize with messages (so the server's own template is used), then everything goes as token ids through
// POST /v1/completions — greedy generation, and echo + logprobs + max_tokens 0 for prompt logprobs.
import { DawnError } from '../../core/errors.js';
import type { Backend, PositionLogprobs } from './backend.js';

export interface HttpBackendOptions {
  url: string;
  /** Default: the first model of GET /v1/models. */
  model?: string;
  apiKey?: string;
}

interface CompletionChoice {
  text: string;
  logprobs?: { token_logprobs: (number | null)[]; top_logprobs: (Record<string, number> | null)[] } | null;
}

export class HttpBackend implements Backend {
  private constructor(
    readonly label: string,
    private readonly base: string,
    private readonly model: string,
    private readonly apiKey: string | undefined,
  ) {}

  static async connect(options: HttpBackendOptions): Promise<HttpBackend> {
    const base = options.url.replace(/\/+$/, '');
    let model = options.model;
    if (model === undefined) {
      const list = (await request(base, 'GET', '/v1/models', undefined, options.apiKey)) as { data?: { id: string }[] };
      model = list.data?.[0]?.id;
      if (model === undefined) throw new DawnError('DAWN_ERR_BENCH_SERVER', `${base}/v1/models lists no model`);
    }
    return new HttpBackend(`${base} (${model})`, base, model, options.apiKey);
  }

  async chatPromptIds(userMessage: string): Promise<number[]> {
    const body = { model: this.model, messages: [{ role: 'user', content: userMessage }], add_generation_prompt: true };
    return ((await this.post('/tokenize', body)) as { tokens: number[] }).tokens;
  }

  async encode(text: string): Promise<number[]> {
    const body = { model: this.model, prompt: text, add_special_tokens: false };
    return ((await this.post('/tokenize', body)) as { tokens: number[] }).tokens;
  }

  async generate(promptIds: readonly number[], maxTokens: number): Promise<string> {
    const body = {
      model: this.model,
      prompt: promptIds,
      max_tokens: maxTokens,
      temperature: 0,
      skip_special_tokens: true,
    };
    return (await this.completion(body)).text;
  }

  async promptLogprobs(ids: readonly number[], numTop: number): Promise<PositionLogprobs[]> {
    const body = { model: this.model, prompt: ids, max_tokens: 0, echo: true, logprobs: numTop, temperature: 0 };
    const lp = (await this.completion(body)).logprobs;
    if (!lp || lp.token_logprobs.length < ids.length)
      throw new DawnError(
        'DAWN_ERR_BENCH_SERVER',
        `${this.base}: echo returned ${lp?.token_logprobs.length ?? 'no'} prompt logprobs for ${ids.length} tokens`,
      );
    const out: PositionLogprobs[] = [];
    for (let i = 1; i < ids.length; i++)
      out.push({ logprob: lp.token_logprobs[i]!, top: new Map(Object.entries(lp.top_logprobs[i] ?? {})) });
    return out;
  }

  async close(): Promise<void> {}

  private async completion(body: object): Promise<CompletionChoice> {
    const res = (await this.post('/v1/completions', body)) as { choices?: CompletionChoice[] };
    const choice = res.choices?.[0];
    if (choice === undefined) throw new DawnError('DAWN_ERR_BENCH_SERVER', `${this.base}: completion without choices`);
    return choice;
  }

  private post(path: string, body: object): Promise<unknown> {
    return request(this.base, 'POST', path, body, this.apiKey);
  }
}

async function request(base: string, method: string, path: string, body: object | undefined, apiKey?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok)
    throw new DawnError('DAWN_ERR_BENCH_SERVER', `${method} ${base}${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

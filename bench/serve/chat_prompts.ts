// The text part of a chat benchmark request: the random prompt's token ids turned into text by the server's own
// POST /detokenize (dawnllm and vLLM both have it), so a chat prompt is about as long as the id list whatever the
// tokenizer. Also the text-only chat prompt's length from POST /tokenize, so the report can tell how many tokens
// the images added (usage.prompt_tokens minus it). Both run before the benchmark, untimed.
import type { BenchPrompt } from './dataset.js';
import { BenchError } from './errors.js';

export interface ChatPrompt {
  readonly text: string;
  /** Tokens of the text-only chat prompt (template included) by POST /tokenize; null when it is unavailable. */
  readonly textPromptTokens: number | null;
}

interface ServerCall {
  readonly baseUrl: string;
  readonly model: string;
  readonly apiKey?: string;
}

/** Requests to the server at once while preparing (enough to hide latency, few enough to be polite). */
const PREPARE_CONCURRENCY = 8;

export async function chatPrompts(server: ServerCall, prompts: readonly BenchPrompt[]): Promise<ChatPrompt[]> {
  const out: ChatPrompt[] = [];
  for (let i = 0; i < prompts.length; i += PREPARE_CONCURRENCY) {
    const batch = prompts.slice(i, i + PREPARE_CONCURRENCY);
    out.push(
      ...(await Promise.all(
        batch.map(async (p) => {
          const text = await detokenize(server, p.promptTokenIds);
          return { text, textPromptTokens: await textPromptTokens(server, text) };
        }),
      )),
    );
  }
  return out;
}

async function detokenize(server: ServerCall, tokens: readonly number[]): Promise<string> {
  const where = new URL('/detokenize', server.baseUrl).toString();
  let body: { prompt?: unknown };
  try {
    body = (await postJson(server, where, { model: server.model, tokens })) as typeof body;
  } catch (error) {
    throw new BenchError(
      'DAWN_ERR_BENCH_DETOKENIZE',
      `bench serve: could not turn the prompt's token ids into text with ${where}: ${(error as Error).message}`,
      { hint: "chat requests take their text from the server's POST /detokenize (dawnllm and vLLM serve it)" },
    );
  }
  if (typeof body.prompt !== 'string')
    throw new BenchError('DAWN_ERR_BENCH_DETOKENIZE', `bench serve: ${where} answered without a "prompt" string`);
  return body.prompt;
}

async function textPromptTokens(server: ServerCall, text: string): Promise<number | null> {
  const where = new URL('/tokenize', server.baseUrl).toString();
  const messages = [{ role: 'user', content: [{ type: 'text', text }] }];
  try {
    const body = (await postJson(server, where, { model: server.model, messages, add_generation_prompt: true })) as {
      count?: unknown;
    };
    return typeof body.count === 'number' ? body.count : null;
  } catch {
    return null; // only the image-token figure needs it
  }
}

async function postJson(server: ServerCall, url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(server.apiKey ? { authorization: `Bearer ${server.apiKey}` } : {}),
    },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new Error(`HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
  return response.json();
}

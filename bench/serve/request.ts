// One streaming request to an OpenAI-compatible /v1/completions, timed the way `vllm bench serve` times it: TTFT
// when the first chunk with choices arrives, one inter-token latency per later chunk, latency at the last chunk;
// the output token count from the final usage chunk (stream_options.include_usage), else one per chunk.
import { SseParser } from './sse.js';

export interface RequestInput {
  readonly url: string;
  readonly model: string;
  readonly promptTokenIds: readonly number[];
  readonly outputLen: number;
  readonly ignoreEos: boolean;
  readonly apiKey?: string;
  readonly signal?: AbortSignal;
}

export interface RequestResult {
  readonly success: boolean;
  readonly error: string;
  readonly promptLen: number;
  readonly outputTokens: number;
  /** Whether outputTokens came from the server's usage (else counted chunks). */
  readonly isUsageCount: boolean;
  /** Seconds; 0 when failed. */
  readonly ttft: number;
  /** Seconds between consecutive chunks after the first. */
  readonly itl: readonly number[];
  /** Seconds from send to the last chunk. */
  readonly latency: number;
  /** performance.now() at send, milliseconds. */
  readonly startMs: number;
}

interface CompletionChunk {
  choices?: { text?: string }[];
  usage?: { completion_tokens?: number } | null;
  error?: { message?: string };
}

export async function sendCompletion(input: RequestInput): Promise<RequestResult> {
  const startMs = performance.now();
  const base = { promptLen: input.promptTokenIds.length, startMs, isUsageCount: false };
  const failed = (error: string): RequestResult => ({
    ...base,
    success: false,
    error,
    outputTokens: 0,
    ttft: 0,
    itl: [],
    latency: 0,
  });
  const body = {
    model: input.model,
    prompt: input.promptTokenIds,
    max_tokens: input.outputLen,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: input.ignoreEos,
  };
  let response: Response;
  try {
    response = await fetch(input.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(input.apiKey ? { authorization: `Bearer ${input.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: input.signal,
    });
  } catch (error) {
    return failed(`request failed: ${describe(error)}`);
  }
  if (!response.ok || response.body === null) {
    const text = await response.text().catch(() => '');
    return failed(`HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  const parser = new SseParser();
  let ttft = 0;
  let lastMs = startMs;
  let numChunks = 0;
  let usageTokens: number | null = null;
  const itl: number[] = [];
  try {
    for await (const bytes of response.body) {
      for (const payload of parser.push(bytes)) {
        if (payload === '[DONE]') continue;
        const chunk = JSON.parse(payload) as CompletionChunk;
        if (chunk.error) return failed(`stream error: ${chunk.error.message ?? payload}`);
        const now = performance.now();
        if (chunk.choices && chunk.choices.length > 0) {
          if (numChunks === 0) ttft = (now - startMs) / 1000;
          else itl.push((now - lastMs) / 1000);
          lastMs = now;
          numChunks++;
        } else if (typeof chunk.usage?.completion_tokens === 'number') usageTokens = chunk.usage.completion_tokens;
      }
    }
  } catch (error) {
    return failed(`reading the stream failed: ${describe(error)}`);
  }
  if (numChunks === 0) return failed('never received a chunk with choices to measure TTFT from');
  return {
    ...base,
    success: true,
    error: '',
    outputTokens: usageTokens ?? numChunks,
    isUsageCount: usageTokens !== null,
    ttft,
    itl,
    latency: (lastMs - startMs) / 1000,
  };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}

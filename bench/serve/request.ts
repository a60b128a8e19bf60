// One streaming request to an OpenAI-compatible /v1/completions or /v1/chat/completions, timed the way
// `vllm bench serve` times it: TTFT when the first token chunk arrives, one inter-token latency per later chunk,
// latency at the last chunk; the output token count from the final usage chunk (stream_options.include_usage),
// else one per chunk. Both APIs share the timing; they differ in the body and in which chunks carry tokens.
import { SseParser } from './sse.js';

interface CommonInput {
  readonly url: string;
  readonly model: string;
  readonly outputLen: number;
  readonly ignoreEos: boolean;
  readonly apiKey?: string;
  readonly signal?: AbortSignal;
}

export interface RequestInput extends CommonInput {
  readonly promptTokenIds: readonly number[];
}

export interface ChatRequestInput extends CommonInput {
  /** The user's text (after the images, as vLLM's multimodal datasets put it). */
  readonly text: string;
  /** data: URLs (or any URL the server takes), one image_url part each. */
  readonly imageUrls: readonly string[];
  /** What the report counts as this request's input tokens (the random prompt's length). */
  readonly promptLen: number;
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
  /** usage.prompt_tokens as the server counted them (images included); null when it sent no usage. */
  readonly serverPromptTokens?: number | null;
}

interface StreamChunk {
  choices?: { text?: string; delta?: { role?: string; content?: string | null } }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

export function sendCompletion(input: RequestInput): Promise<RequestResult> {
  const body = {
    model: input.model,
    prompt: input.promptTokenIds,
    max_tokens: input.outputLen,
    ...commonBody(input),
  };
  // Every completions chunk with a choice carries the text of at least one token (or the finish).
  return streamRequest(input, body, input.promptTokenIds.length, (chunk) => (chunk.choices?.length ?? 0) > 0);
}

export function sendChatCompletion(input: ChatRequestInput): Promise<RequestResult> {
  const content = [
    ...input.imageUrls.map((url) => ({ type: 'image_url', image_url: { url } })),
    { type: 'text', text: input.text },
  ];
  const body = {
    model: input.model,
    messages: [{ role: 'user', content }],
    max_completion_tokens: input.outputLen,
    ...commonBody(input),
  };
  return streamRequest(input, body, input.promptLen, isChatTokenChunk);
}

/**
 * A chat chunk with a choice carries a token, except the role announcement ({role: 'assistant', content: ''}):
 * servers send it just before the first token, so counting it would move TTFT by nothing and add a ~0 ITL.
 */
function isChatTokenChunk(chunk: StreamChunk): boolean {
  const choice = chunk.choices?.[0];
  if (choice === undefined) return false;
  const delta = choice.delta ?? {};
  return !(delta.role !== undefined && !delta.content);
}

function commonBody(input: CommonInput) {
  return {
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: input.ignoreEos,
  };
}

async function streamRequest(
  input: CommonInput,
  body: Record<string, unknown>,
  promptLen: number,
  isTokenChunk: (chunk: StreamChunk) => boolean,
): Promise<RequestResult> {
  const startMs = performance.now();
  const base = { promptLen, startMs, isUsageCount: false, serverPromptTokens: null };
  const failed = (error: string): RequestResult => ({
    ...base,
    success: false,
    error,
    outputTokens: 0,
    ttft: 0,
    itl: [],
    latency: 0,
  });
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
  let promptTokens: number | null = null;
  const itl: number[] = [];
  try {
    for await (const bytes of response.body) {
      for (const payload of parser.push(bytes)) {
        if (payload === '[DONE]') continue;
        const chunk = JSON.parse(payload) as StreamChunk;
        if (chunk.error) return failed(`stream error: ${chunk.error.message ?? payload}`);
        const now = performance.now();
        if (chunk.choices && chunk.choices.length > 0) {
          if (!isTokenChunk(chunk)) continue;
          if (numChunks === 0) ttft = (now - startMs) / 1000;
          else itl.push((now - lastMs) / 1000);
          lastMs = now;
          numChunks++;
        } else if (chunk.usage) {
          if (typeof chunk.usage.completion_tokens === 'number') usageTokens = chunk.usage.completion_tokens;
          if (typeof chunk.usage.prompt_tokens === 'number') promptTokens = chunk.usage.prompt_tokens;
        }
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
    serverPromptTokens: promptTokens,
  };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}

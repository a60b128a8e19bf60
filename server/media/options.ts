// How the server may obtain images for a request, and how many it takes: vLLM's --allowed-local-media-path,
// --allowed-media-domains and --limit-mm-per-prompt, its VLLM_IMAGE_FETCH_TIMEOUT (5 s) and
// VLLM_MEDIA_URL_ALLOW_REDIRECTS, plus a byte cap per image (vLLM has none; an unbounded download is a memory
// hazard). Parsed once at startup; a bad flag is a usage error there, not a 400 on every request.
import { realpathSync, statSync } from 'node:fs';
import { DawnError } from '../../core/errors.js';

export type MediaKind = 'image' | 'video';

export interface MediaOptions {
  /** Real paths (symlinks resolved) of the directories file:// URLs may read under; empty: file:// is refused. */
  readonly allowedLocalMediaPaths: readonly string[];
  /** Host names http(s) URLs may name (lower case); null: any host. */
  readonly allowedMediaDomains: readonly string[] | null;
  /** Whole fetch (connect, redirects, body) of one http(s) image. */
  readonly fetchTimeoutMs: number;
  /** Encoded bytes of one image, whatever its source. */
  readonly maxImageBytes: number;
  /** Follow http redirects (each hop is checked against allowedMediaDomains). */
  readonly allowRedirects: boolean;
  /** Items per prompt and modality (vLLM's meaning: more is a 400 naming the limit). */
  readonly limitPerPrompt: Readonly<Record<MediaKind, number>>;
}

/** vLLM's default per modality when --limit-mm-per-prompt does not name it. */
export const DEFAULT_LIMIT_PER_PROMPT = 999;
/** VLLM_IMAGE_FETCH_TIMEOUT's default. */
export const DEFAULT_FETCH_TIMEOUT_S = 5;
/** OpenAI's documented per-image limit. */
export const DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024;
/** Redirect hops followed when redirects are allowed. */
export const MAX_REDIRECTS = 5;

export class MediaOptionError extends DawnError {
  constructor(message: string) {
    super('DAWN_ERR_CLI_MEDIA_OPTION', message);
  }
}

export interface MediaFlags {
  allowedLocalMediaPath?: string | null;
  allowedMediaDomains?: string | null;
  limitMmPerPrompt?: string | null;
  fetchTimeoutS?: number | null;
  maxImageBytes?: number | null;
  /** Defaults to process.env (VLLM_IMAGE_FETCH_TIMEOUT, VLLM_MEDIA_URL_ALLOW_REDIRECTS). */
  env?: Record<string, string | undefined>;
}

/** Flags (and vLLM's environment variables) → MediaOptions; throws MediaOptionError naming the flag. */
export function mediaOptionsFrom(flags: MediaFlags = {}): MediaOptions {
  const env = flags.env ?? process.env;
  const envTimeout = env.VLLM_IMAGE_FETCH_TIMEOUT;
  const timeoutS = flags.fetchTimeoutS ?? (envTimeout !== undefined ? Number(envTimeout) : DEFAULT_FETCH_TIMEOUT_S);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new MediaOptionError(
      `--media-fetch-timeout (or VLLM_IMAGE_FETCH_TIMEOUT) must be a positive number of seconds, got ${timeoutS}`,
    );
  const maxImageBytes = flags.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  if (!Number.isInteger(maxImageBytes) || maxImageBytes <= 0)
    throw new MediaOptionError(`--max-image-bytes must be a positive integer, got ${maxImageBytes}`);
  const redirects = env.VLLM_MEDIA_URL_ALLOW_REDIRECTS;
  return {
    allowedLocalMediaPaths: resolveAllowedPaths(flags.allowedLocalMediaPath ?? null),
    allowedMediaDomains: parseDomains(flags.allowedMediaDomains ?? null),
    fetchTimeoutMs: timeoutS * 1000,
    maxImageBytes,
    allowRedirects: redirects === undefined ? true : !['0', 'false'].includes(redirects.toLowerCase()),
    limitPerPrompt: parseLimitMmPerPrompt(flags.limitMmPerPrompt ?? null),
  };
}

/**
 * --limit-mm-per-prompt as vLLM takes it: '{"image": 2, "video": 0}', or the newer form with options
 * '{"image": {"count": 2, ...}}' (only the count is used here). Unnamed modalities keep vLLM's default 999.
 */
export function parseLimitMmPerPrompt(text: string | null): Record<MediaKind, number> {
  const limits: Record<MediaKind, number> = { image: DEFAULT_LIMIT_PER_PROMPT, video: DEFAULT_LIMIT_PER_PROMPT };
  if (text === null || text.trim() === '') return limits;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MediaOptionError(
      `--limit-mm-per-prompt: expected JSON like '{"image": 2}', got ${text} (${(err as Error).message})`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new MediaOptionError(`--limit-mm-per-prompt: expected a JSON object like '{"image": 2}', got ${text}`);
  for (const [modality, value] of Object.entries(parsed)) {
    const count = typeof value === 'object' && value !== null ? (value as { count?: unknown }).count : value;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0)
      throw new MediaOptionError(
        `--limit-mm-per-prompt: "${modality}" must be a count ≥ 0 (or {"count": n}), got ${JSON.stringify(value)}`,
      );
    // Modalities this server has no input for (audio) are accepted and have nothing to limit.
    if (modality === 'image' || modality === 'video') limits[modality] = count;
  }
  return limits;
}

function resolveAllowedPaths(text: string | null): string[] {
  if (text === null || text.trim() === '') return [];
  return text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      let real: string;
      try {
        real = realpathSync(p);
      } catch {
        throw new MediaOptionError(`--allowed-local-media-path: ${p} does not exist`);
      }
      if (!statSync(real).isDirectory())
        throw new MediaOptionError(`--allowed-local-media-path: ${p} is not a directory`);
      return real;
    });
}

function parseDomains(text: string | null): string[] | null {
  if (text === null || text.trim() === '') return null;
  return text
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
}

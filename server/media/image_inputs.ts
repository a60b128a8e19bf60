// The images of one chat request, from the rendered prompt to what the engine takes: the limits are checked
// first (vLLM's --limit-mm-per-prompt message), then every image is loaded, decoded and preprocessed (concurrently,
// in the processor's worker threads), and the template's one <|image_pad|> per image is expanded to the image's
// tokens.
// Each image becomes a MultiModalInput {contentHash, tokenStart, numTokens, data: ProcessedImage}.
import type { MultiModalInput } from '../../engine/request.js';
import type { ChatMediaRef } from '../../models/common/chat_messages.js';
import { expandImagePads, type ProcessedImage } from '../../models/qwen3_vl_moe/processor/index.js';
import { preprocessInWorker } from '../../models/qwen3_vl_moe/processor/worker_pool.js';
import type { ChatMediaPart } from './chat_media.js';
import { mediaError } from './errors.js';
import { type ImageSourceKind, loadImageBytes } from './image_source.js';
import type { MediaKind, MediaOptions } from './options.js';
import type { RunnerMultimodal } from './runner_multimodal.js';

export interface PreparedPrompt {
  promptIds: number[];
  mmInputs: MultiModalInput[];
}

export interface ImageObserver {
  /** One image loaded, decoded and preprocessed, in `seconds`. */
  imageProcessed(source: ImageSourceKind, seconds: number): void;
}

/** vLLM's wording, so clients that parse it (routers picking a vision replica) keep working. */
function limitMessage(kind: MediaKind, limit: number, count: number): string {
  return `At most ${limit} ${kind}(s) may be provided in one prompt, found ${count}. Set \`--limit-mm-per-prompt\` to increase this limit.`;
}

/** Refuses what the flags do not allow (counts per modality, then videos), before any image is loaded. */
export function checkMediaLimits(parts: readonly ChatMediaPart[], options: Pick<MediaOptions, 'limitPerPrompt'>): void {
  for (const kind of ['image', 'video'] as const) {
    const count = parts.filter((p) => p.kind === kind).length;
    const limit = options.limitPerPrompt[kind];
    if (count > limit) throw mediaError('DAWN_ERR_API_MEDIA_LIMIT', limitMessage(kind, limit, count), 'messages');
  }
  const video = parts.find((p) => p.kind === 'video');
  if (video !== undefined)
    throw mediaError('DAWN_ERR_API_MEDIA_UNSUPPORTED', 'video input is not supported; send images', video.param);
}

/** Loads, decodes and preprocesses one image; the time it took goes to `observer`. */
async function prepareImage(
  part: ChatMediaPart,
  multimodal: RunnerMultimodal,
  options: MediaOptions,
  observer: ImageObserver | null,
): Promise<ProcessedImage> {
  if (part.url === null)
    throw mediaError(
      'DAWN_ERR_API_MEDIA_URL',
      'an image part needs {"type": "image_url", "image_url": {"url": …}}',
      part.param,
    );
  const start = performance.now();
  const { bytes, source } = await loadImageBytes(part.url, options, part.param);
  // Decode and preprocess off the event loop: a large image would stall every stream's tokens for ~100s of ms.
  const processed = await preprocessInWorker(bytes, multimodal.imageProcessor, part.param);
  observer?.imageProcessed(source, (performance.now() - start) / 1000);
  return processed;
}

/**
 * The prompt the engine runs: `promptIds` (the template's output) with each image's pad expanded, and the images.
 * `parts` come from chatMediaParts (request order, with JSON paths); `rendered` is the template's own media list,
 * which must agree with them.
 */
export async function prepareChatImages(
  promptIds: number[],
  rendered: readonly ChatMediaRef[],
  parts: readonly ChatMediaPart[],
  multimodal: RunnerMultimodal | null,
  options: MediaOptions,
  observer: ImageObserver | null = null,
): Promise<PreparedPrompt> {
  if (rendered.length === 0) return { promptIds, mmInputs: [] };
  if (rendered.length !== parts.length || rendered.some((r, i) => r.kind !== parts[i].kind || r.url !== parts[i].url))
    throw new Error(`image intake: the template saw ${rendered.length} media parts, the request walk ${parts.length}`);
  checkMediaLimits(parts, options);
  if (multimodal === null)
    throw mediaError(
      'DAWN_ERR_API_MEDIA_UNSUPPORTED',
      'this model takes no images (At most 0 image(s) may be provided in one prompt.)',
      parts[0].param,
    );
  const images = await Promise.all(parts.map((part) => prepareImage(part, multimodal, options, observer)));
  const { ids, spans } = expandImagePads(promptIds, multimodal.imagePadTokenId, images);
  const mmInputs = spans.map((span, i) => ({
    contentHash: images[i].contentHash,
    tokenStart: span.tokenStart,
    numTokens: span.numTokens,
    data: images[i],
  }));
  return { promptIds: ids, mmInputs };
}

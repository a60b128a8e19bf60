// How a loaded model runner tells the server that it takes images, and how they are to be prepared: an optional
// `multimodal` property on the runner object. Text-only runners leave it out, and an image sent to them is a 400.
// Structural on purpose: models/<arch> runners declare a compatible property without importing the server.
import type { ModelRunner } from '../../engine/model_runner.js';
import type { ImageProcessorConfig } from '../../models/qwen3_vl_moe/processor/index.js';

export interface RunnerMultimodal {
  /** The token the chat template writes once per image (<|image_pad|>); expanded to the image's numTokens. */
  readonly imagePadTokenId: number;
  /** The checkpoint's preprocessor_config.json (resize bounds, patch and merge sizes, normalization). */
  readonly imageProcessor: ImageProcessorConfig;
}

/** A runner the server can serve: any ModelRunner, with `multimodal` when it takes images. */
export type ServableRunner = ModelRunner & { readonly multimodal?: RunnerMultimodal };

// The Qwen3-VL vision tower's output, as the text model consumes it (forward_visual.ts): merged features replace the
// image-token embeddings, deepstack features are added after the first decoder layers.

export interface VisionFeatures {
  /** [numTokens, outHidden] */
  embeds: Float32Array;
  /** per deepstack index, [numTokens, outHidden] */
  deepstack: Float32Array[];
}

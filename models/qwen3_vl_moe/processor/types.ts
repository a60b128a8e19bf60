// The shapes that cross the processor's boundary: the server decodes and preprocesses, the runner and the vision
// encoder consume ProcessedImage. Names and layouts follow transformers' Qwen2-VL/Qwen3-VL image processor.

/** preprocessor_config.json, as the Qwen2-VL/Qwen3-VL image processor reads it. */
export interface ImageProcessorConfig {
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  /** `size.shortest_edge` (or `min_pixels`): a pixel count, not an edge length, as in transformers. */
  minPixels: number;
  /** `size.longest_edge` (or `max_pixels`): a pixel count. */
  maxPixels: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  rescaleFactor: number;
}

/** A decoded image: 8-bit RGB, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export interface ProcessedImage {
  /** [numPatches, C·T·P·P] f32, rows in 2x2 merge-block order, exactly transformers' pixel_values layout. */
  pixelValues: Float32Array;
  /** [t, h, w] in patches (before merging), transformers' image_grid_thw. */
  gridThw: [number, number, number];
  /** Placeholder tokens after merging: t·h·w / merge². */
  numTokens: number;
  /** sha256 hex over gridThw and the pixel values: the image-cache and prefix-cache key. */
  contentHash: string;
}

// Encoded images by content hash, so a repeated screenshot (the same picture in a new turn, or in another request)
// runs through the vision tower once. Least recently used entries go first once the features' bytes pass the
// capacity; an image larger than the whole capacity is handed back without being kept. Lookups and hits are
// counted for the server's vllm:mm_cache_queries / vllm:mm_cache_hits.
import { ModelError } from '../../core/errors.js';
import type { VisionFeatures } from './vision_encoder.js';

export interface ImageCacheStats {
  /** Lookups counted so far, and how many found the image already encoded (or being encoded). */
  queries: number;
  hits: number;
  entries: number;
  bytes: number;
  capacityBytes: number;
}

export function featureBytes(f: VisionFeatures): number {
  return f.embeds.byteLength + f.deepstack.reduce((n, d) => n + d.byteLength, 0);
}

export class ImageCache {
  private readonly entries = new Map<string, VisionFeatures>();
  /** Encodes under way: a second lookup of the same image waits for the first instead of encoding again. */
  private readonly pending = new Map<string, Promise<VisionFeatures>>();
  private bytes = 0;
  private queries = 0;
  private hits = 0;

  constructor(readonly capacityBytes: number) {
    if (!(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0))
      throw new ModelError(
        'DAWN_ERR_MODEL_OPTION',
        `image cache: capacity ${capacityBytes} must be an integer ≥ 0 bytes`,
      );
  }

  /**
   * The features of the image `hash`, from the cache or by `encode()` (kept if they fit). `count: false` looks up
   * without counting (the runner counts one lookup per image per prefill, not one per chunk).
   */
  async get(hash: string, encode: () => Promise<VisionFeatures>, count = true): Promise<VisionFeatures> {
    if (count) this.queries++;
    const hit = this.entries.get(hash);
    if (hit !== undefined) {
      this.entries.delete(hash); // re-insert: the map's order is the eviction order
      this.entries.set(hash, hit);
      if (count) this.hits++;
      return hit;
    }
    const inFlight = this.pending.get(hash);
    if (inFlight !== undefined) {
      if (count) this.hits++;
      return inFlight;
    }
    const job = encode();
    this.pending.set(hash, job);
    try {
      const features = await job;
      this.put(hash, features);
      return features;
    } finally {
      this.pending.delete(hash);
    }
  }

  has(hash: string): boolean {
    return this.entries.has(hash);
  }

  stats(): ImageCacheStats {
    return {
      queries: this.queries,
      hits: this.hits,
      entries: this.entries.size,
      bytes: this.bytes,
      capacityBytes: this.capacityBytes,
    };
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private put(hash: string, features: VisionFeatures): void {
    const size = featureBytes(features);
    if (size > this.capacityBytes || this.entries.has(hash)) return;
    for (const [oldest, f] of this.entries) {
      if (this.bytes + size <= this.capacityBytes) break;
      this.entries.delete(oldest);
      this.bytes -= featureBytes(f);
    }
    this.entries.set(hash, features);
    this.bytes += size;
  }
}

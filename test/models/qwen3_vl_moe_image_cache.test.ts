// The encoded-image cache: one encode per content hash, least recently used out first by bytes, counters.
import { describe, expect, it } from 'vitest';
import { featureBytes, ImageCache } from '../../models/qwen3_vl_moe/image_cache.js';
import type { VisionFeatures } from '../../models/qwen3_vl_moe/vision_encoder.js';

/** Features of `rows` rows of 4 floats plus one deepstack layer: 32·rows bytes. */
function features(rows: number, fill: number): VisionFeatures {
  return { embeds: new Float32Array(rows * 4).fill(fill), deepstack: [new Float32Array(rows * 4).fill(-fill)] };
}

function encoder() {
  const calls: string[] = [];
  const encode = (hash: string, rows: number) => async () => {
    calls.push(hash);
    return features(rows, calls.length);
  };
  return { calls, encode };
}

describe('ImageCache', () => {
  it('encodes an image once and counts lookups and hits', async () => {
    const cache = new ImageCache(1024);
    const { calls, encode } = encoder();
    const a1 = await cache.get('a', encode('a', 2));
    const a2 = await cache.get('a', encode('a', 2));
    expect(a2).toBe(a1);
    await cache.get('b', encode('b', 2));
    await cache.get('a', encode('a', 2), false); // an uncounted lookup (a later chunk of the same prefill)
    expect(calls).toEqual(['a', 'b']);
    expect(cache.stats()).toEqual({ queries: 3, hits: 1, entries: 2, bytes: 128, capacityBytes: 1024 });
    expect(featureBytes(a1)).toBe(64);
  });

  it('shares an encode under way between two lookups', async () => {
    const cache = new ImageCache(1024);
    const { calls, encode } = encoder();
    const [x, y] = await Promise.all([cache.get('a', encode('a', 1)), cache.get('a', encode('a', 1))]);
    expect(y).toBe(x);
    expect(calls).toEqual(['a']);
    expect(cache.stats()).toMatchObject({ queries: 2, hits: 1 });
  });

  it('evicts the least recently used images to stay within its bytes, and keeps none larger than itself', async () => {
    const cache = new ImageCache(200); // three 64-byte images fit
    const { calls, encode } = encoder();
    for (const h of ['a', 'b', 'c']) await cache.get(h, encode(h, 2));
    await cache.get('a', encode('a', 2)); // a is now the most recent: b goes first
    await cache.get('d', encode('d', 2));
    expect(['a', 'b', 'c', 'd'].map((h) => cache.has(h))).toEqual([true, false, true, true]);
    expect(cache.stats().bytes).toBe(192);
    const big = await cache.get('big', encode('big', 10)); // 320 bytes: returned, not kept, nothing evicted
    expect(big.embeds.length).toBe(40);
    expect(cache.has('big')).toBe(false);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 192 });
    await cache.get('b', encode('b', 2));
    expect(calls).toEqual(['a', 'b', 'c', 'd', 'big', 'b']);
  });

  it('forgets a failed encode, so the next lookup tries again', async () => {
    const cache = new ImageCache(1024);
    await expect(
      cache.get('a', async () => {
        throw new Error('GPU lost');
      }),
    ).rejects.toThrow('GPU lost');
    expect(cache.has('a')).toBe(false);
    const f = await cache.get('a', async () => features(1, 7));
    expect(f.embeds[0]).toBe(7);
    expect(() => new ImageCache(-1)).toThrow(/capacity -1/);
  });
});

// preprocessor_config.json parsing (both spellings of the pixel bounds, clear errors) and <|image_pad|> expansion.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../core/errors.js';
import {
  expandImagePads,
  ImageInputError,
  type ProcessedImage,
  readImageProcessorConfig,
} from '../../../models/qwen3_vl_moe/processor/index.js';
import { findFixture } from '../../helpers/fixtures.js';

async function dirWith(json: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dawnllm-pp-'));
  await writeFile(join(dir, 'preprocessor_config.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return dir;
}

const qwen3vl30b = {
  size: { longest_edge: 16777216, shortest_edge: 65536 },
  patch_size: 16,
  temporal_patch_size: 2,
  merge_size: 2,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
  processor_class: 'Qwen3VLProcessor',
  image_processor_type: 'Qwen2VLImageProcessorFast',
};

describe('readImageProcessorConfig', () => {
  it('reads the tiny fixture: size holds pixel counts', async () => {
    const dir = findFixture('qwen3vlmoe-tiny/bf16');
    expect(dir).not.toBeNull();
    const cfg = await readImageProcessorConfig(dir!);
    expect(cfg).toEqual({
      patchSize: 16,
      temporalPatchSize: 2,
      mergeSize: 2,
      minPixels: 6144,
      maxPixels: 6144,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
      rescaleFactor: 1 / 255,
    });
  });

  it('reads the 30B release config; min_pixels/max_pixels override size', async () => {
    const cfg = await readImageProcessorConfig(await dirWith(qwen3vl30b));
    expect([cfg.minPixels, cfg.maxPixels, cfg.patchSize]).toEqual([65536, 16777216, 16]);
    const over = await readImageProcessorConfig(await dirWith({ ...qwen3vl30b, min_pixels: 1024, max_pixels: 4096 }));
    expect([over.minPixels, over.maxPixels]).toEqual([1024, 4096]);
  });

  it('names the file and the field in errors', async () => {
    const bad = await dirWith({ ...qwen3vl30b, patch_size: 'sixteen' });
    await expect(readImageProcessorConfig(bad)).rejects.toThrow(ModelError);
    await expect(readImageProcessorConfig(bad)).rejects.toThrow(/preprocessor_config\.json: field "patch_size"/);
    await expect(readImageProcessorConfig(await dirWith({ ...qwen3vl30b, image_std: [0.5, 0.5] }))).rejects.toThrow(
      /field "image_std" should be a list of 3 numbers/,
    );
    await expect(
      readImageProcessorConfig(await dirWith({ ...qwen3vl30b, size: { shortest_edge: 9e6, longest_edge: 4096 } })),
    ).rejects.toThrow(/min pixels \(9000000\) exceed max pixels \(4096\)/);
    await expect(readImageProcessorConfig(await dirWith('{ not json'))).rejects.toThrow(/is not valid JSON/);
    await expect(readImageProcessorConfig(join(tmpdir(), 'no-such-dawnllm-dir'))).rejects.toThrow(
      /cannot read .*preprocessor_config\.json/,
    );
  });
});

describe('expandImagePads', () => {
  const img = (numTokens: number): ProcessedImage => ({
    pixelValues: new Float32Array(0),
    gridThw: [1, 2, 2 * numTokens],
    numTokens,
    contentHash: `h${numTokens}`,
  });
  const PAD = 7;

  it('expands each placeholder to its image token count and reports the spans', () => {
    const out = expandImagePads([1, PAD, 2, 3, PAD, 4], PAD, [img(3), img(2)]);
    expect(out.ids).toEqual([1, PAD, PAD, PAD, 2, 3, PAD, PAD, 4]);
    expect(out.spans).toEqual([
      { tokenStart: 1, numTokens: 3 },
      { tokenStart: 6, numTokens: 2 },
    ]);
  });

  it('leaves a prompt without images alone', () => {
    expect(expandImagePads([1, 2, 3], PAD, [])).toEqual({ ids: [1, 2, 3], spans: [] });
  });

  it('refuses a placeholder/image count mismatch with a 400', () => {
    const run = () => expandImagePads([1, PAD, 2], PAD, [img(1), img(1)]);
    expect(run).toThrow(ImageInputError);
    expect(run).toThrow(/1 image placeholder token\(s\) \(id 7\) but 2 image\(s\)/);
    try {
      run();
    } catch (err) {
      expect((err as ImageInputError).status).toBe(400);
    }
  });
});

// Images through the whole path on the tiny Qwen3-VL-MoE (bf16, f32 KV): engine → scheduler → Qwen3VlMoeRunner
// (M-RoPE positions, image cache, vision rows per chunk) → GPU forward. The encoder injected here is the f64 CPU
// vision reference (the GPU VisionEncoder is tested against it on its own). The golden `image` prompt must give
// transformers' 12 greedy tokens: prefilled in one step, in 8-token chunks that split the image, and next to a
// concurrent text request; the image is encoded once for all of it. A prefix-cache hit that ends inside an image
// must give the same tokens as computing the prompt from scratch. Two images in one prompt follow the CPU reference.
// Last, what serve loads (loadRunner, with the GPU VisionEncoder and a bf16 KV cache) gives the golden tokens too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLMEngine } from '../../engine/engine.js';
import type { MultiModalInput, RequestOutputEvent } from '../../engine/request.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import type { ScheduledBatch } from '../../engine/scheduled_batch.js';
import { Qwen3VlMoeRunner } from '../../models/qwen3_vl_moe/model_runner.js';
import { MropePositions } from '../../models/qwen3_vl_moe/mrope_positions.js';
import { loadRunner } from '../../models/qwen3_vl_moe/runner.js';
import type { ProcessedImage } from '../../models/qwen3_vl_moe/processor/types.js';
import { findFixture } from '../helpers/fixtures.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { argmax, loadReferenceWeights, referenceForward } from './qwen3_vl_moe_reference.js';
import { type Golden, goldenFormats, readGolden, tinyRoot } from './qwen3_vl_moe_reference_golden.js';
import { loadReferenceVisionWeights, readProcessedImage, referenceVision } from './qwen3_vl_moe_vision_reference.js';

const gpu = await gpuOrSkip();
const dir = findFixture(`${tinyRoot}/bf16`);
const imagePath = findFixture(`${tinyRoot}/image/gradient-100x75.processed.safetensors`);
const timeout = 600_000;

async function generate(
  engine: LLMEngine,
  id: string,
  prompt: readonly number[],
  mmInputs: readonly MultiModalInput[] | undefined,
  maxTokens = 12,
) {
  const params = createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens });
  const tokens: number[] = [];
  let done: Extract<RequestOutputEvent, { type: 'done' }> | null = null;
  for await (const ev of engine.addRequest({ requestId: id, promptTokenIds: prompt, params, mmInputs })) {
    if (ev.type === 'done') done = ev;
    else tokens.push(...ev.tokenIds);
  }
  return { tokens, cached: done!.usage.cachedPromptTokens };
}

describe.skipIf(!gpu || !dir || !imagePath)(
  'Qwen3-VL-MoE runner with images under the engine (bf16)',
  { timeout },
  () => {
    let runner: Qwen3VlMoeRunner;
    let golden: Golden;
    let image: ProcessedImage;
    let imageStart: number;
    let encodes = 0;
    /** Every prefill entry run: its first position and length. */
    const prefills: { start: number; n: number }[] = [];
    /** Both engines share the runner; each has its own KV bookkeeping and prefix cache, used one at a time. */
    let roomy: LLMEngine;
    let chunked: LLMEngine;

    beforeAll(async () => {
      const weights = await loadReferenceVisionWeights(dir!);
      runner = await Qwen3VlMoeRunner.create(gpu!, dir!, {
        numKvBlocks: 32,
        maxTokens: 64,
        maxSeqs: 4,
        kvDtype: 'f32',
        imageEncoder: () => ({
          encode: async (img) => {
            encodes++;
            return referenceVision(weights, img.pixelValues, img.gridThw);
          },
        }),
      });
      const execute = runner.execute.bind(runner);
      runner.execute = (batch: ScheduledBatch) => {
        for (const e of batch.entries)
          if (e.phase === 'prefill') prefills.push({ start: e.positions[0], n: e.tokenIds.length });
        return execute(batch);
      };
      roomy = new LLMEngine({ runner, maxNumSeqs: 4, maxNumBatchedTokens: 64, maxWaiting: 8, eosTokenIds: [] });
      chunked = new LLMEngine({ runner, maxNumSeqs: 4, maxNumBatchedTokens: 8, maxWaiting: 8, eosTokenIds: [] });
      golden = await readGolden(goldenFormats[0]);
      const processed = await readProcessedImage(imagePath!);
      const [t, h, w] = processed.gridThw;
      image = { ...processed, numTokens: (t * h * w) / 4, contentHash: 'fixture-gradient-100x75' };
      imageStart = golden.cases.image.prompt_ids.indexOf(runner.model.config.imageTokenId);
    }, timeout);
    afterAll(async () => {
      await chunked?.shutdown(0); // releases the runner
    });

    const mmAt = (tokenStart: number): MultiModalInput[] => [
      { contentHash: image.contentHash, tokenStart, numTokens: image.numTokens, data: image },
    ];

    it('generates transformers’ greedy tokens for the image prompt, prefilled in one step', async () => {
      const c = golden.cases.image;
      expect(imageStart).toBe(5);
      expect(runner.multimodal?.imagePadTokenId).toBe(runner.model.config.imageTokenId);
      expect(runner.multimodal?.imageProcessor).toMatchObject({ patchSize: 16, mergeSize: 2, temporalPatchSize: 2 });
      expect(image.numTokens).toBe(6);
      const out = await generate(roomy, 'img', c.prompt_ids, mmAt(imageStart));
      expect(out.tokens).toEqual(c.greedy_ids);
      expect(encodes).toBe(1);
      expect(runner.multiModalCacheStats()).toEqual({ queries: 1, hits: 0 });
    });

    it('gives the same tokens with the image split across 8-token chunks, beside a text request; encodes it once', async () => {
      const { image: c, text } = golden.cases;
      prefills.length = 0;
      const [a, b] = await Promise.all([
        generate(chunked, 'img-chunked', c.prompt_ids, mmAt(imageStart)),
        generate(chunked, 'text', text.prompt_ids, undefined),
      ]);
      expect(a.tokens).toEqual(c.greedy_ids);
      expect(b.tokens).toEqual(text.greedy_ids);
      // Some chunk started inside the image (rows 5..10): the runner sliced the image's rows across chunks.
      expect(prefills.some((p) => p.start > imageStart && p.start < imageStart + image.numTokens)).toBe(true);
      expect(encodes).toBe(1);
      expect(runner.multiModalCacheStats()).toEqual({ queries: 2, hits: 1 });
      expect(chunked.metricsSnapshot()).toMatchObject({ mmCacheQueries: 2, mmCacheHits: 1 });
    });

    it('continues a prefix-cache hit that ends inside an image exactly as a computation from scratch', async () => {
      // Eight more text tokens before the image put it at tokens 13..18, across the first block boundary (16).
      const ids = golden.cases.image.prompt_ids;
      const filler = golden.cases.text.prompt_ids.slice(0, 8);
      const start = imageStart + filler.length;
      const primer = [...ids.slice(0, imageStart), ...filler, ...ids.slice(imageStart)];
      // The same first block (image rows 0..2 in it), a different second block: the hit ends at token 16.
      const prompt = [...primer];
      prompt[25] = primer[25] === 35 ? 36 : 35;
      await generate(roomy, 'primer', primer, mmAt(start), 1);
      prefills.length = 0;
      const hit = await generate(roomy, 'hit', prompt, mmAt(start), 6);
      expect(hit.cached).toBe(16);
      expect(prefills[0]).toEqual({ start: 16, n: prompt.length - 16 });
      // From scratch in one step (no prefix cache): the image's rows all in one chunk.
      const fresh = new LLMEngine({
        runner,
        maxNumSeqs: 4,
        maxNumBatchedTokens: 64,
        maxWaiting: 8,
        eosTokenIds: [],
        enablePrefixCaching: false,
      });
      const scratch = await generate(fresh, 'scratch', prompt, mmAt(start), 6);
      expect(scratch.cached).toBe(0);
      expect(hit.tokens).toEqual(scratch.tokens);
      expect(encodes).toBe(1);
    });

    it('places two images of one prompt as the CPU reference does, in one chunk and split across chunks', async () => {
      // The golden prompt with a second image (the fixture's pixels negated) after eight more text tokens.
      const ids = golden.cases.image.prompt_ids;
      const end = imageStart + image.numTokens + 1; // after <|vision_end|>
      const second = [ids[imageStart - 1], ...ids.slice(imageStart, end)];
      const prompt = [...ids.slice(0, end), ...golden.cases.text.prompt_ids.slice(0, 8), ...second, ...ids.slice(end)];
      const start2 = end + 8 + 1;
      const negated: ProcessedImage = {
        ...image,
        pixelValues: image.pixelValues.map((v) => -v),
        contentHash: 'fixture-gradient-100x75-negated',
      };
      const mm: MultiModalInput[] = [
        ...mmAt(imageStart),
        { contentHash: negated.contentHash, tokenStart: start2, numTokens: image.numTokens, data: negated },
      ];
      // The reference: both images' features at their rows, M-RoPE positions, greedy with the cache recomputed.
      const vision = await loadReferenceVisionWeights(dir!);
      const w = await loadReferenceWeights(dir!);
      const feats = [image, negated].map((img) => referenceVision(vision, img.pixelValues, img.gridThw));
      const cat = (pick: (f: (typeof feats)[number]) => Float32Array) => {
        const out = new Float32Array(pick(feats[0]).length * 2);
        out.set(pick(feats[0]));
        out.set(pick(feats[1]), pick(feats[0]).length);
        return out;
      };
      const rows = [...mm.flatMap((m) => Array.from({ length: m.numTokens }, (_, j) => m.tokenStart + j))];
      const visual = {
        rows,
        embeds: cat((f) => f.embeds),
        deepstack: feats[0].deepstack.map((_, l) => cat((f) => f.deepstack[l])),
      };
      const mrope = new MropePositions(mm.map((m) => ({ tokenStart: m.tokenStart, grid: [1, 2, 3] as const })));
      const V = runner.vocabSize;
      const seq = [...prompt];
      const want: number[] = [];
      for (let i = 0; i < 6; i++) {
        const logits = referenceForward(w, seq, mrope.range(0, seq.length), undefined, visual).logits;
        want.push(argmax(logits.subarray((seq.length - 1) * V)));
        seq.push(want[i]);
      }
      const before = encodes;
      prefills.length = 0;
      const whole = await generate(roomy, 'two-whole', prompt, mm, 6);
      expect(prefills[0]).toEqual({ start: 0, n: prompt.length }); // both images in one chunk
      prefills.length = 0;
      const split = await generate(chunked, 'two-split', prompt, mm, 6);
      expect(prefills.some((p) => p.start > start2 && p.start < start2 + image.numTokens)).toBe(true);
      expect(whole.tokens).toEqual(want);
      expect(split.tokens).toEqual(want);
      expect(encodes - before).toBe(1); // only the new image
    });

    it('refuses an image whose grid does not match its placeholder count, naming it', async () => {
      const bad: MultiModalInput[] = [{ ...mmAt(imageStart)[0], numTokens: 5 }];
      await expect(generate(roomy, 'bad', golden.cases.image.prompt_ids, bad, 1)).rejects.toThrow(
        /image 0 has grid \[1,4,6\] \(6 tokens after 2×2 merging\), but occupies 5 prompt tokens/,
      );
    });
  },
);

describe.skipIf(!gpu || !dir || !imagePath)(
  'loadRunner with images (what serve loads: the GPU vision tower)',
  { timeout },
  () => {
    it('answers the golden image prompt with transformers’ greedy tokens (bf16 KV)', async () => {
      const loaded = await loadRunner({
        modelDir: dir!,
        maxModelLen: null,
        maxNumSeqs: 4,
        maxNumBatchedTokens: 16, // the image prompt in two chunks
        gpuMemoryUtilization: 0.9,
        dtype: 'auto',
        quantization: 'auto',
        kvCacheDtype: 'auto',
        device: null,
      });
      const runner = loaded.runner as Qwen3VlMoeRunner;
      const engine = new LLMEngine({ runner, maxNumSeqs: 4, maxNumBatchedTokens: 16, maxWaiting: 8, eosTokenIds: [] });
      try {
        expect(runner.multimodal?.imagePadTokenId).toBe(runner.model.config.imageTokenId);
        expect(loaded.loadSummary.join('\n')).toMatch(/images: vision tower on the GPU/);
        const golden = await readGolden(goldenFormats[0]);
        const c = golden.cases.image;
        const processed = await readProcessedImage(imagePath!);
        const data: ProcessedImage = { ...processed, numTokens: 6, contentHash: 'fixture-gradient-100x75' };
        const mm: MultiModalInput[] = [{ contentHash: data.contentHash, tokenStart: 5, numTokens: 6, data }];
        const first = await generate(engine, 'served-1', c.prompt_ids, mm);
        expect(first.tokens).toEqual(c.greedy_ids);
        const again = await generate(engine, 'served-2', c.prompt_ids, mm, 3);
        expect(again.tokens).toEqual(c.greedy_ids.slice(0, 3));
        expect(runner.imageCacheStats()).toMatchObject({ queries: 1, hits: 0, entries: 1 });
        // The repeat hit the prefix cache for its first block (all of the image), so no image lookup was needed.
        expect(again.cached).toBe(16);
      } finally {
        await engine.shutdown(0);
      }
    });

    it('serves text only with --limit-mm-per-prompt image 0, and applies --mm-processor-kwargs bounds', async () => {
      const base = {
        modelDir: dir!,
        maxModelLen: null,
        maxNumSeqs: 2,
        maxNumBatchedTokens: 16,
        gpuMemoryUtilization: 0.9,
        dtype: 'auto',
        quantization: 'auto',
        kvCacheDtype: 'auto',
        device: null,
      };
      const off = await loadRunner({ ...base, imagesPerPrompt: 0 });
      expect((off.runner as Qwen3VlMoeRunner).multimodal).toBeUndefined();
      expect(off.loadSummary.join('\n')).toContain('images: off');
      await off.runner.release();
      const bounded = await loadRunner({ ...base, mmProcessorKwargs: { maxPixels: 100_000 } });
      expect((bounded.runner as Qwen3VlMoeRunner).multimodal?.imageProcessor.maxPixels).toBe(100_000);
      expect(bounded.loadSummary.join('\n')).toMatch(/up to 100000 pixels per image \([\d.]+ MiB reserved\)/);
      await bounded.runner.release();
      await expect(loadRunner({ ...base, mmProcessorKwargs: { minPixels: 200_000 } })).rejects.toThrow(
        /min_pixels 200000 exceeds max_pixels/,
      );
      // lavapipe's 128 MiB binding holds at most 21,845 patches of 1536 inputs: an explicit 100 MP bound is refused at
      // load (the checkpoint's own bound would be lowered instead: test/tools/synthetic_checkpoint.test.ts).
      await expect(loadRunner({ ...base, mmProcessorKwargs: { maxPixels: 100_000_000 } })).rejects.toThrow(
        /do not fit this device's \d+-byte storage binding in the vision tower \(at most \d+ pixels\)/,
      );
    });
  },
);

// The engine (scheduler, paged KV blocks, continuous batching) driving the GPU model through Qwen3VlMoeRunner on the
// tiny Qwen3-VL-MoE: greedy requests alone and together give transformers' tokens, seeded sampling is
// reproducible, and prompt logprobs match the CPU reference's log-softmax (GPU logits sit within ~2e-5 of it; bound
// 1e-3). The GPU sampler compiles on the first sampled step: minutes on lavapipe with a cold shader cache (the
// sampling kernel's own tests warm it), hence the long timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLMEngine } from '../../engine/engine.js';
import type { RequestOutputEvent } from '../../engine/request.js';
import { createSamplingParams, type SamplingParamsInput } from '../../engine/sampling_params.js';
import { Qwen3VlMoeRunner } from '../../models/qwen3_vl_moe/model_runner.js';
import { loadRunner } from '../../models/qwen3_vl_moe/runner.js';
import { findFixture } from '../helpers/fixtures.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { loadReferenceWeights, referenceForward } from './qwen3_vl_moe_reference.js';
import { type Golden, goldenFormats, readGolden, tinyRoot } from './qwen3_vl_moe_reference_golden.js';

const gpu = await gpuOrSkip();
const dir = findFixture(`${tinyRoot}/bf16`);
const timeout = 600_000;

async function generate(engine: LLMEngine, prompt: readonly number[], params: SamplingParamsInput, id: string) {
  const sampling = createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens: 12, ...params });
  const tokens: number[] = [];
  let done: Extract<RequestOutputEvent, { type: 'done' }> | null = null;
  for await (const ev of engine.addRequest({ requestId: id, promptTokenIds: prompt, params: sampling })) {
    if (ev.type === 'done') done = ev;
    else tokens.push(...ev.tokenIds);
  }
  return { tokens, done: done! };
}

describe.skipIf(!gpu || !dir)('Qwen3-VL-MoE runner under the engine (bf16)', { timeout }, () => {
  let runner: Qwen3VlMoeRunner;
  let engine: LLMEngine;
  let golden: Golden;

  beforeAll(async () => {
    // f32 KV keeps the logits within ~2e-5 of the f64 reference (bf16 KV moves logprobs by ~6e-3).
    runner = await Qwen3VlMoeRunner.create(gpu!, dir!, { numKvBlocks: 32, maxTokens: 64, maxSeqs: 4, kvDtype: 'f32' });
    // A small token budget: the 37-token prompt is prefilled in chunks that share steps with decodes.
    engine = new LLMEngine({ runner, maxNumSeqs: 4, maxNumBatchedTokens: 24, maxWaiting: 8, eosTokenIds: [] });
    golden = await readGolden(goldenFormats[0]);
  }, timeout);
  afterAll(async () => {
    await engine?.shutdown(0);
    await runner?.release();
  });

  it('generates transformers’ greedy tokens for two prompts at once (chunked prefill, batched decode)', async () => {
    const { text, random } = golden.cases;
    const [a, b] = await Promise.all([
      generate(engine, text.prompt_ids, {}, 'text'),
      generate(engine, random.prompt_ids, {}, 'random'),
    ]);
    expect(a.tokens).toEqual(text.greedy_ids);
    expect(b.tokens).toEqual(random.greedy_ids);
    expect(engine.numFreeKvBlocks).toBe(32);
  });

  it('samples reproducibly with a seed, and differently with another', async () => {
    const prompt = golden.cases.text.prompt_ids;
    const params = { temperature: 1.5, topP: 0.95, maxTokens: 8 };
    const x = await generate(engine, prompt, { ...params, seed: 3 }, 's1');
    const y = await generate(engine, prompt, { ...params, seed: 3 }, 's2');
    const z = await generate(engine, prompt, { ...params, seed: 4 }, 's3');
    expect(y.tokens).toEqual(x.tokens);
    expect(z.tokens).not.toEqual(x.tokens);
  });

  it('scores the prompt: logprobs of each prompt token as the reference computes them', async () => {
    const prompt = golden.cases.text.prompt_ids;
    const { done } = await generate(engine, prompt, { maxTokens: 1, promptLogprobs: 2 }, 'score');
    const lp = done.promptLogprobs!;
    expect(lp.length).toBe(prompt.length);
    expect(lp[0]).toBeNull();
    const ref = referenceForward(await loadReferenceWeights(dir!), prompt).logits;
    const V = runner.vocabSize;
    for (let t = 1; t < prompt.length; t++) {
      const row = ref.subarray((t - 1) * V, t * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      const lse = max + Math.log(sum);
      const got = lp[t]!;
      expect(got.tokenId).toBe(prompt[t]);
      expect(Math.abs(got.logprob - (row[prompt[t]] - lse))).toBeLessThanOrEqual(1e-3);
      expect(got.top.length).toBe(2);
      expect(Math.abs(got.top[0].logprob - (max - lse))).toBeLessThanOrEqual(1e-3);
    }
  });
});

describe.skipIf(!gpu || !dir)('loadRunner (what serve loads)', { timeout }, () => {
  const options = {
    modelDir: dir!,
    maxModelLen: null,
    maxNumSeqs: 4,
    maxNumBatchedTokens: 64,
    gpuMemoryUtilization: 0.9,
    dtype: 'auto',
    quantization: 'auto',
    kvCacheDtype: 'auto',
    device: null,
  };

  it('loads the checkpoint with the serve flags and reports what it loaded', async () => {
    const lines: string[] = [];
    const loaded = await loadRunner({ ...options, onProgress: (l) => lines.push(l) });
    try {
      expect(loaded.format).toMatch(/unquantized/);
      expect(loaded.runner.vocabSize).toBe(2048);
      expect(loaded.runner.blockSize).toBe(16);
      expect(loaded.runner.numKvBlocks).toBe(256); // the software-adapter pool
      expect(loaded.runner.maxModelLen).toBe(4096);
      expect(lines).toEqual(loaded.loadSummary);
      expect(loaded.loadSummary.join('\n')).toMatch(/KV cache: 256 blocks/);
    } finally {
      await loaded.runner.release();
    }
  });

  it('refuses flags it cannot honour, naming them', async () => {
    await expect(loadRunner({ ...options, kvCacheDtype: 'int4' })).rejects.toThrow(/--kv-cache-dtype int4/);
    await expect(loadRunner({ ...options, dtype: 'float16' })).rejects.toThrow(/--dtype float16/);
    await expect(loadRunner({ ...options, quantization: 'modelopt' })).rejects.toThrow(
      /--quantization modelopt: .* is unquantized/,
    );
  });
});

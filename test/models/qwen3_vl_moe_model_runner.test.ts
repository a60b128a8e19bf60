// The engine (scheduler, paged KV blocks, continuous batching) driving the GPU model through Qwen3VlMoeRunner on the
// tiny Qwen3-VL-MoE: greedy requests alone and together give transformers' tokens, seeded sampling is
// reproducible, and prompt logprobs match the CPU reference's log-softmax (GPU logits sit within ~2e-5 of it; bound
// 1e-3). The GPU sampler compiles on the first sampled step: minutes on lavapipe with a cold shader cache (the
// sampling kernel's own tests warm it), hence the long timeout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLMEngine } from '../../engine/engine.js';
import type { RequestOutputEvent } from '../../engine/request.js';
import { createSamplingParams, type SamplingParamsInput } from '../../engine/sampling_params.js';
import { promptLogitRows, Qwen3VlMoeRunner } from '../../models/qwen3_vl_moe/model_runner.js';
import { loadRunner } from '../../models/qwen3_vl_moe/runner.js';
import { makeSyntheticCheckpoint } from '../../tools/make_synthetic_checkpoint.js';
import { specFromFlags } from '../../tools/synthetic/spec.js';
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

describe('promptLogitRows: logits rows within one storage binding', () => {
  const o = { vocabSize: 4096, maxTokens: 8192, maxSeqs: 8, maxBindingBytes: 128 * 2 ** 20 };
  it('keeps maxTokens when it fits, else what the binding holds after the sampled rows, else the cap', () => {
    expect(promptLogitRows({ ...o, maxTokens: 256 })).toBe(256);
    // The small synthetic preset under serve's defaults: (8 + 8192) · 4096 · 4 = 134,348,800 B > 128 MiB.
    expect(promptLogitRows(o)).toBe(8192 - 8);
    // Qwen3-VL-30B on an H100 (2 GiB bindings), 256 sequences: 3533 rows fit.
    expect(promptLogitRows({ vocabSize: 151936, maxTokens: 8192, maxSeqs: 256, maxBindingBytes: 2 ** 31 })).toBe(
      3533 - 256,
    );
    expect(promptLogitRows({ ...o, cap: 8 })).toBe(8);
  });
  it('refuses sequence counts whose sampled rows do not fit, naming the flag', () => {
    expect(() => promptLogitRows({ ...o, maxSeqs: 8192 })).toThrow(
      /8192 sequences per step need 8193 logit rows of 4096 f32 \(134234112 bytes\), and one storage binding holds 134217728 bytes \(8192 rows\)/,
    );
    try {
      promptLogitRows({ ...o, maxSeqs: 8192 });
    } catch (err) {
      expect((err as { hint?: string }).hint).toBe('lower --max-num-seqs to at most 8191');
    }
    expect(() => promptLogitRows({ ...o, cap: 0 })).toThrow(/maxLogitRows 0 must be an integer ≥ 1/);
  });
});

describe.skipIf(!gpu || !dir)('prompt logprobs over capped logit rows', { timeout }, () => {
  it('a 23-token prompt scored 8 rows per step equals the uncapped runner’s one-chunk result', async () => {
    const prompt = (await readGolden(goldenFormats[0])).cases.text.prompt_ids.slice(0, 23);
    expect(prompt).toHaveLength(23);
    const score = async (cap: number | undefined) => {
      const runner = await Qwen3VlMoeRunner.create(gpu!, dir!, {
        numKvBlocks: 8,
        maxTokens: 64,
        maxSeqs: 2,
        kvDtype: 'f32',
        maxLogitRows: cap,
      });
      const engine = new LLMEngine({ runner, maxNumSeqs: 2, maxNumBatchedTokens: 64, maxWaiting: 4, eosTokenIds: [] });
      try {
        expect(runner.maxPromptLogprobTokensPerStep).toBe(cap ?? 64);
        const { tokens, done } = await generate(engine, prompt, { maxTokens: 2, promptLogprobs: 3 }, `cap${cap}`);
        return { tokens, lps: done.promptLogprobs!, steps: engine.metricsSnapshot().numSteps };
      } finally {
        await engine.shutdown(0);
      }
    };
    const whole = await score(undefined);
    const capped = await score(8);
    // One 23-token prefill and a decode, against chunks [0, 8) [8, 16) [16, 23) and a decode.
    expect([whole.steps, capped.steps]).toEqual([2, 4]);
    expect(capped.tokens).toEqual(whole.tokens);
    expect(capped.lps).toHaveLength(23);
    expect(capped.lps[0]).toBeNull();
    for (let t = 1; t < 23; t++) {
      const [a, b] = [capped.lps[t]!, whole.lps[t]!];
      expect(a.tokenId).toBe(b.tokenId);
      expect(a.rank).toBe(b.rank);
      expect(Math.abs(a.logprob - b.logprob)).toBeLessThanOrEqual(1e-5);
      expect(a.top.map((x) => x.tokenId)).toEqual(b.top.map((x) => x.tokenId));
      a.top.forEach((x, i) => expect(Math.abs(x.logprob - b.top[i].logprob)).toBeLessThanOrEqual(1e-5));
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

// serve's defaults on the small synthetic preset (vocab 4096): 8 sequences and 8192 batched tokens would make a
// (8 + 8192) · 4096 · 4 = 134,348,800 B logits buffer, over lavapipe's 128 MiB binding; the runner keeps
// 8192 − 8 = 8184 prompt-logprob rows and the first request (prompt logprobs and a sample) runs.
describe.skipIf(!gpu)('loadRunner with --max-num-batched-tokens 8192 on a vocab that overflows one binding', () => {
  const root = mkdtempSync(join(tmpdir(), 'dawnllm-logit-rows-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('loads with the logit rows that fit and scores a prompt', { timeout }, async () => {
    const small = join(root, 'small');
    makeSyntheticCheckpoint(small, specFromFlags({ preset: 'small' }));
    const loaded = await loadRunner({
      modelDir: small,
      maxModelLen: null,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 8192,
      gpuMemoryUtilization: 0.9,
      dtype: 'auto',
      quantization: 'auto',
      kvCacheDtype: 'auto',
      device: null,
      imagesPerPrompt: 0,
    });
    const runner = loaded.runner as Qwen3VlMoeRunner;
    expect(runner.vocabSize).toBe(4096);
    const { maxStorageBufferBindingSize, maxBufferSize, adapter } = gpu!.caps;
    const fit = Math.floor(Math.min(maxStorageBufferBindingSize, maxBufferSize) / (4096 * 4));
    expect(runner.maxPromptLogprobTokensPerStep).toBe(Math.min(8192, fit - 8));
    if (adapter.isSoftware) expect(runner.maxPromptLogprobTokensPerStep).toBe(8184); // lavapipe: 128 MiB
    const engine = new LLMEngine({ runner, maxNumSeqs: 8, maxNumBatchedTokens: 8192, maxWaiting: 4, eosTokenIds: [] });
    try {
      const prompt = Array.from({ length: 40 }, (_, i) => (i * 97 + 5) % 4096);
      const { tokens, done } = await generate(engine, prompt, { maxTokens: 2, promptLogprobs: 1 }, 'small');
      expect(tokens).toHaveLength(2);
      expect(done.promptLogprobs).toHaveLength(40);
      expect(done.promptLogprobs!.slice(1).every((lp) => lp !== null && Number.isFinite(lp.logprob))).toBe(true);
    } finally {
      await engine.shutdown(0);
    }
  });
});

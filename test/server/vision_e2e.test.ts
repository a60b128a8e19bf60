// The whole image path through `dawnllm serve` on the GPU runner (lavapipe here), on the tiny Qwen3-VL-MoE fixture:
// the official openai client sends transformers' golden image prompt (the PNG as a data: URL, then the text) and
// gets transformers' 12 greedy tokens back. The prompt ids are compared first: that proves the chat template and
// pad expansion; the tokens prove preprocessing, the vision features, DeepStack and M-RoPE through the engine. A
// second identical request is served from the image cache (vllm:mm_cache_hits_total).
// Twice: as served (serve's own loadRunner, the GPU VisionEncoder), and with the f64 CPU vision reference
// injected into the runner (test/models/qwen3_vl_moe_vision_reference.ts), which checks the server and runner path
// apart from the GPU vision tower.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runServe } from '../../cli/serve.js';
import { Qwen3VlMoeRunner } from '../../models/qwen3_vl_moe/model_runner.js';
import type { RunnerFactory } from '../../server/runner_factory.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { repoRoot } from '../helpers/fixtures.js';
import { loadReferenceVisionWeights, referenceVision } from '../models/qwen3_vl_moe_vision_reference.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'qwen3vlmoe-tiny');
const golden = JSON.parse(readFileSync(join(fixtures, 'golden', 'cases.json'), 'utf8')).checkpoints.bf16.cases.image;
const png = readFileSync(join(fixtures, golden.image_png));
const gpu = await gpuOrSkip();

/** The GPU text model with the f64 reference vision tower; bf16 KV, as serve's default. */
const referenceVisionRunner: RunnerFactory = async (o) => {
  const weights = await loadReferenceVisionWeights(o.modelDir);
  const runner = await Qwen3VlMoeRunner.create(gpu!, o.modelDir, {
    numKvBlocks: 32,
    maxTokens: o.maxNumBatchedTokens,
    maxSeqs: o.maxNumSeqs,
    kvDtype: 'bf16',
    imageEncoder: () => ({ encode: async (img) => referenceVision(weights, img.pixelValues, img.gridThw) }),
  });
  return { runner, format: runner.model.format, loadSummary: ['vision: f64 CPU reference (test)'] };
};

const variants: { name: string; runnerFactory?: RunnerFactory }[] = [
  { name: 'GPU vision tower, as served' },
  { name: 'f64 reference vision tower', runnerFactory: referenceVisionRunner },
];

describe.skipIf(gpu === null).each(variants)('image chat through dawnllm serve (tiny fixture, $name)', (variant) => {
  let stop: () => void;
  let served: Promise<number>;
  let address: string;
  let client: OpenAI;

  beforeAll(async () => {
    const lines: string[] = [];
    let ready: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    served = runServe(
      [
        join(fixtures, 'bf16'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--served-model-name',
        'tiny-vl',
        '--max-num-seqs',
        '4',
        '--max-num-batched-tokens',
        '64',
        '--limit-mm-per-prompt',
        '{"image": 2}',
        // The second request must reach the image cache, not stop at a prefix-cache hit over the image's block.
        '--no-enable-prefix-caching',
      ],
      {
        print: (line) => {
          lines.push(line);
          if (line.startsWith('ready:')) ready();
        },
        stop: new Promise((resolve) => (stop = () => resolve(undefined))),
        runnerFactory: variant.runnerFactory,
      },
    );
    await Promise.race([isReady, served.then(() => Promise.reject(new Error(lines.join('\n'))))]);
    expect(lines.join('\n')).toContain('image input: up to 2 per prompt');
    address = /listening on (http:\/\/[\d.:]+)/.exec(lines.join('\n'))![1];
    client = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'x', maxRetries: 0 });
  }, 300_000);

  afterAll(async () => {
    stop?.();
    await served;
  }, 60_000);

  const ask = () =>
    client.chat.completions.create({
      model: 'tiny-vl',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
            { type: 'text', text: 'Describe this image.' },
          ],
        },
      ],
      max_tokens: golden.greedy_ids.length,
      temperature: 0,
      // transformers generated with min_new_tokens = 12, so EOS may not end the answer early.
      ...{ ignore_eos: true, return_token_ids: true },
    });

  it("answers the golden image prompt with transformers' greedy tokens", async () => {
    const res = (await ask()) as Awaited<ReturnType<typeof ask>> & { prompt_token_ids: number[] };
    expect(res.prompt_token_ids).toEqual(golden.prompt_ids);
    const choice = res.choices[0] as (typeof res.choices)[number] & { token_ids: number[] };
    expect(choice.token_ids).toEqual(golden.greedy_ids);
  }, 300_000);

  it('a repeated image is served from the image cache, with the same tokens', async () => {
    const res = await ask();
    const choice = res.choices[0] as (typeof res.choices)[number] & { token_ids: number[] };
    expect(choice.token_ids).toEqual(golden.greedy_ids);
    const metrics = await (await fetch(`${address}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    expect(value('vllm:mm_cache_queries_total')).toBe(2);
    expect(value('vllm:mm_cache_hits_total')).toBe(1);
    expect(value('dawnllm:images_processed_total')).toBe(2);
  }, 300_000);
});

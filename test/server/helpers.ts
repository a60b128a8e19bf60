// Starts the real server (Fastify on 127.0.0.1, port 0) around the CPU fake runner, with the tiny fixture's real
// tokenizer, chat template and generation_config, and hands tests an `openai` client pointed at it.
import { join } from 'node:path';
import OpenAI from 'openai';
import { FakeModelRunner, type FakeModelRunnerOptions } from '../../engine/fake_model_runner.js';
import type { ScheduledBatch } from '../../engine/scheduled_batch.js';
import type { StepOutput } from '../../engine/model_runner.js';
import type { EngineRequest } from '../../engine/request.js';
import type { RunnerMultimodal } from '../../server/media/runner_multimodal.js';
import { type AppOptions, buildApp, shutdownApp } from '../../server/app.js';
import type { App } from '../../server/routes/common.js';
import { ModelHost } from '../../server/model_host.js';
import { ServingModel, type ServingModelOptions } from '../../server/serving_model.js';
import { Tokenizer } from '../../models/common/tokenizer.js';
import { repoRoot } from '../helpers/fixtures.js';

export const modelDir = join(repoRoot, 'test', 'fixtures', 'qwen3vlmoe-tiny', 'bf16');
export const MODEL_NAME = 'tiny-qwen3-vl-moe';

/** The fake runner, recording the sampling params of every sampled entry (to check the defaults chain). */
export class RecordingRunner extends FakeModelRunner {
  readonly sampledParams: ScheduledBatch['entries'][number]['sample'][] = [];
  /** Set: the runner takes images (as a vision model's runner does). */
  multimodal?: RunnerMultimodal;

  override async execute(batch: ScheduledBatch): Promise<StepOutput> {
    for (const e of batch.entries) if (e.sample !== null) this.sampledParams.push(e.sample);
    return super.execute(batch);
  }
}

export interface TestServerOptions {
  runner?: Partial<FakeModelRunnerOptions>;
  serving?: Partial<ServingModelOptions>;
  app?: AppOptions;
  /** Leave the host loading (no model yet); call `load()` to finish. */
  isLoading?: boolean;
  /** The runner takes images this way (default: text only). */
  multimodal?: RunnerMultimodal;
}

export interface TestServer {
  baseURL: string;
  app: App;
  host: ModelHost;
  runner: RecordingRunner;
  /** Every request handed to the engine, in order. */
  requests: EngineRequest[];
  model: () => ServingModel;
  client: (options?: { apiKey?: string; maxRetries?: number }) => OpenAI;
  load: () => void;
  shutdown: (graceMs: number) => Promise<void>;
  close: () => Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const tokenizer = Tokenizer.load(modelDir);
  const runner = new RecordingRunner({
    numKvBlocks: 64,
    blockSize: 16,
    maxModelLen: 512,
    vocabSize: tokenizer.vocabSize,
    ...options.runner,
  });
  runner.multimodal = options.multimodal;
  const requests: EngineRequest[] = [];
  const host = new ModelHost([MODEL_NAME, 'alias-model'], modelDir);
  const { app } = buildApp(host, options.app);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  let model: ServingModel | null = null;
  const load = () => {
    model = new ServingModel(runner, {
      modelDir,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 256,
      maxWaitingRequests: 16,
      enablePrefixCaching: true,
      chatTemplate: null,
      generationConfig: 'auto',
      ...options.serving,
    });
    const { engine } = model;
    const addRequest = engine.addRequest.bind(engine);
    engine.addRequest = (request) => {
      requests.push(request);
      return addRequest(request);
    };
    host.setReady(model);
  };
  if (!options.isLoading) load();
  let isClosed = false;
  return {
    baseURL: `${address}/v1`,
    app,
    host,
    runner,
    requests,
    model: () => model!,
    client: (o = {}) =>
      new OpenAI({ baseURL: `${address}/v1`, apiKey: o.apiKey ?? 'unused', maxRetries: o.maxRetries ?? 0 }),
    load,
    shutdown: async (graceMs) => {
      isClosed = true;
      await shutdownApp(app, host, graceMs);
    },
    close: async () => {
      if (isClosed) return;
      isClosed = true;
      await shutdownApp(app, host, 0);
    },
  };
}

/** Polls until `check` holds (or fails after timeoutMs). */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

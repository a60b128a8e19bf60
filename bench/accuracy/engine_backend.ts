// A checkpoint run in-process: the model runner (the GPU runner of the checkpoint's architecture by default, or
// any RunnerFactory, e.g. the CPU fake runner in tests) under the real LLMEngine with the checkpoint's tokenizer,
// chat template and generation_config EOS ids — the same path `dawnllm serve` takes.
import type { TokenLogprobs } from '../../engine/request.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import { applyChatTemplate } from '../../models/common/chat_template.js';
import { defaultRunnerFactory, type RunnerFactory } from '../../server/runner_factory.js';
import { ServingModel } from '../../server/serving_model.js';
import type { Backend, PositionLogprobs } from './backend.js';

export interface EngineBackendOptions {
  modelDir: string;
  /** Default: the GPU runner (models/<arch>/runner.ts). */
  runnerFactory?: RunnerFactory;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  maxModelLen?: number | null;
  kvCacheDtype?: string;
  device?: string | null;
  onProgress?: (line: string) => void;
}

export class EngineBackend implements Backend {
  private nextId = 0;

  private constructor(
    readonly label: string,
    private readonly model: ServingModel,
  ) {}

  static async load(options: EngineBackendOptions): Promise<EngineBackend> {
    const maxNumSeqs = options.maxNumSeqs ?? 16;
    const maxNumBatchedTokens = options.maxNumBatchedTokens ?? 2048;
    const factory = options.runnerFactory ?? defaultRunnerFactory;
    const { runner } = await factory({
      modelDir: options.modelDir,
      maxModelLen: options.maxModelLen ?? null,
      maxNumSeqs,
      maxNumBatchedTokens,
      gpuMemoryUtilization: 0.9,
      dtype: 'auto',
      quantization: 'auto',
      kvCacheDtype: options.kvCacheDtype ?? 'auto',
      device: options.device ?? null,
      onProgress: options.onProgress,
    });
    const model = new ServingModel(runner, {
      modelDir: options.modelDir,
      maxNumSeqs,
      maxNumBatchedTokens,
      maxWaitingRequests: Number.MAX_SAFE_INTEGER,
      enablePrefixCaching: true,
      chatTemplate: null,
      generationConfig: 'auto',
    });
    return new EngineBackend(options.modelDir, model);
  }

  async chatPromptIds(userMessage: string): Promise<number[]> {
    const { tokenizer, chatTemplate } = this.model;
    return applyChatTemplate(tokenizer, chatTemplate, [{ role: 'user', content: userMessage }], {
      addGenerationPrompt: true,
    }).promptIds;
  }

  async encode(text: string): Promise<number[]> {
    return this.model.tokenizer.encode(text, { addSpecialTokens: false });
  }

  async generate(promptIds: readonly number[], maxTokens: number): Promise<string> {
    // Greedy regardless of generation_config's sampling defaults, like transformers' do_sample=False.
    const params = createSamplingParams({ temperature: 0, maxTokens, skipSpecialTokens: true });
    const stream = this.model.engine.addRequest({
      requestId: `acc-${this.nextId++}`,
      promptTokenIds: promptIds,
      params,
    });
    let text = '';
    for await (const event of stream) if (event.type === 'delta') text += event.textDelta;
    return text;
  }

  async promptLogprobs(ids: readonly number[], numTop: number): Promise<PositionLogprobs[]> {
    const params = createSamplingParams({ temperature: 0, maxTokens: 1, promptLogprobs: numTop });
    const stream = this.model.engine.addRequest({ requestId: `acc-${this.nextId++}`, promptTokenIds: ids, params });
    let rows: readonly (TokenLogprobs | null)[] | null = null;
    for await (const event of stream) if (event.type === 'done') rows = event.promptLogprobs;
    if (rows === null || rows.length !== ids.length)
      throw new Error(`engine returned ${rows?.length ?? 'no'} prompt logprobs for ${ids.length} tokens`);
    return rows.slice(1).map((r) => ({
      logprob: r!.logprob,
      top: new Map(r!.top.map((t) => [String(t.tokenId), t.logprob])),
    }));
  }

  async close(): Promise<void> {
    await this.model.engine.shutdown(0);
  }
}

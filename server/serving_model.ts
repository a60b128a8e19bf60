// Everything a loaded model serves with: its tokenizer and chat template, its generation_config defaults and EOS
// ids, the engine running on the runner, and whether (and how) the runner takes images. Built once the runner exists.
import { eosTokenIdsOf, type GenerationConfig, loadGenerationConfig } from '../engine/generation_config.js';
import { LLMEngine } from '../engine/engine.js';
import type { SamplingParamsInput } from '../engine/sampling_params.js';
import { ChatTemplate } from '../models/common/chat_template.js';
import { Tokenizer } from '../models/common/tokenizer.js';
import type { RunnerMultimodal, ServableRunner } from './media/runner_multimodal.js';

export interface ServingModelOptions {
  modelDir: string;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Requests waiting for their first step; one more is refused with 429 and Retry-After. */
  maxWaitingRequests: number;
  enablePrefixCaching: boolean;
  /** --chat-template: a file or the template text; null: the checkpoint's. */
  chatTemplate: string | null;
  /** --generation-config: 'auto' (the model's defaults), 'vllm' (neutral) or a directory. */
  generationConfig: string;
}

export class ServingModel {
  readonly tokenizer: Tokenizer;
  readonly chatTemplate: ChatTemplate;
  readonly generationConfig: GenerationConfig;
  readonly eosTokenIds: readonly number[];
  readonly engine: LLMEngine;
  /** The fallback layer between a request's fields and the built-in (OpenAI) defaults. */
  readonly samplingDefaults: SamplingParamsInput;
  /** generation_config's max_new_tokens: caps max_tokens; null when unset. */
  readonly maxNewTokens: number | null;
  /** How the runner takes images; null: a text-only model (an image is a 400). */
  readonly multimodal: RunnerMultimodal | null;

  constructor(runner: ServableRunner, options: ServingModelOptions) {
    this.multimodal = runner.multimodal ?? null;
    this.tokenizer = Tokenizer.load(options.modelDir);
    this.chatTemplate = ChatTemplate.load(options.modelDir, this.tokenizer, options.chatTemplate);
    this.generationConfig = loadGenerationConfig(options.modelDir, { mode: options.generationConfig });
    this.eosTokenIds = eosTokenIdsOf(this.tokenizer.eosTokenId, this.generationConfig);
    const d = this.generationConfig.samplingDefaults;
    this.samplingDefaults = {
      temperature: d.temperature,
      topP: d.topP,
      topK: d.topK,
      minP: d.minP,
      repetitionPenalty: d.repetitionPenalty,
    };
    this.maxNewTokens = d.maxTokens ?? null;
    this.engine = new LLMEngine({
      runner,
      maxNumSeqs: options.maxNumSeqs,
      maxNumBatchedTokens: options.maxNumBatchedTokens,
      maxWaiting: options.maxWaitingRequests,
      eosTokenIds: this.eosTokenIds,
      enablePrefixCaching: options.enablePrefixCaching,
      // Text deltas and stop strings through the engine's TextOutputProcessor.
      tokenizer: this.tokenizer,
    });
  }

  get maxModelLen(): number {
    return this.engine.maxModelLen;
  }
}

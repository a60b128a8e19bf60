// `dawnllm serve MODEL`: vLLM's flags and startup lines. The port opens first (GET /health says 503 while the
// model loads), then the runner loads, then the engine starts and the ready line is printed. SIGTERM or SIGINT
// drains: no new requests, in-flight ones get --shutdown-grace-s to finish, the rest are aborted, exit 0.
import { existsSync, statSync } from 'node:fs';
import { ModelError } from '../core/errors.js';
import { describeScheme, readQuantScheme } from '../loader/quant_scheme.js';
import { defaultModelDir } from '../models/default_model.js';
import { buildApp, shutdownApp } from '../server/app.js';
import {
  DEFAULT_FETCH_TIMEOUT_S,
  DEFAULT_MAX_IMAGE_BYTES,
  MediaOptionError,
  mediaOptionsFrom,
} from '../server/media/options.js';
import { ModelHost } from '../server/model_host.js';
import { defaultRunnerFactory, type RunnerFactory } from '../server/runner_factory.js';
import { ServingModel } from '../server/serving_model.js';
import { type FlagSpec, formatHelp, parseArgs, UsageError } from './args.js';

/** What /v1/models calls the bundled model when no MODEL (and no --served-model-name) is given. */
const DEFAULT_MODEL_NAME = 'qwen3vlmoe-arith-nvfp4';

const specs: FlagSpec[] = [
  { name: 'model', type: 'string', help: 'checkpoint directory (or give it as the first argument)' },
  { name: 'host', type: 'string', default: '0.0.0.0', help: 'address to listen on' },
  { name: 'port', type: 'number', default: 8000, help: 'port to listen on' },
  { name: 'served-model-name', type: 'string', help: 'name(s) clients use, comma-separated (default: MODEL)' },
  { name: 'max-model-len', type: 'number', help: "context length (default: the model's, or what the KV pool holds)" },
  { name: 'max-num-seqs', type: 'number', default: 256, help: 'sequences per engine step' },
  { name: 'max-num-batched-tokens', type: 'number', default: 8192, help: 'tokens per engine step' },
  {
    name: 'gpu-memory-utilization',
    type: 'number',
    default: 0.9,
    help: 'fraction of GPU memory for weights + KV cache',
  },
  { name: 'dtype', type: 'string', default: 'auto', help: 'activation dtype: auto | bfloat16 | float16 | float32' },
  {
    name: 'quantization',
    type: 'string',
    default: 'auto',
    help: 'weight format: auto (detect) or the expected scheme',
  },
  { name: 'kv-cache-dtype', type: 'string', default: 'auto', help: 'KV cache dtype: auto | fp8' },
  { name: 'enable-prefix-caching', type: 'boolean', default: true, help: 'reuse KV blocks of equal prefixes' },
  {
    name: 'api-key',
    type: 'string',
    help: 'require Authorization: Bearer <key> on /v1 (comma-separated; else $VLLM_API_KEY)',
  },
  { name: 'chat-template', type: 'string', help: "chat template file or text (default: the checkpoint's)" },
  {
    name: 'generation-config',
    type: 'string',
    default: 'auto',
    help: "sampling defaults: auto (the model's), vllm, or a dir",
  },
  { name: 'device', type: 'string', help: 'GPU adapter name substring (also DAWNLLM_ADAPTER)' },
  { name: 'max-waiting-requests', type: 'number', default: 1024, help: 'queued requests before 429 + Retry-After' },
  { name: 'max-request-body-bytes', type: 'number', default: 32 * 1024 * 1024, help: 'larger request bodies get 413' },
  {
    name: 'shutdown-grace-s',
    type: 'number',
    default: 30,
    help: 'on SIGTERM, seconds in-flight requests may finish in',
  },
  {
    name: 'allowed-local-media-path',
    type: 'string',
    help: 'directories file:// image URLs may read under (comma-separated; default: file:// refused)',
  },
  {
    name: 'allowed-media-domains',
    type: 'string',
    help: 'host names http(s) image URLs may name (comma-separated; default: any)',
  },
  {
    name: 'limit-mm-per-prompt',
    type: 'string',
    help: `items per prompt and modality, JSON like '{"image": 2}' (default: 999 each)`,
  },
  {
    name: 'mm-processor-kwargs',
    type: 'string',
    help: `image processor overrides, JSON like '{"max_pixels": 1003520}' (bounds images and the memory reserved for them)`,
  },
  {
    name: 'media-fetch-timeout',
    type: 'number',
    help: `seconds to fetch one http(s) image (default: $VLLM_IMAGE_FETCH_TIMEOUT or ${DEFAULT_FETCH_TIMEOUT_S})`,
  },
  {
    name: 'max-image-bytes',
    type: 'number',
    default: DEFAULT_MAX_IMAGE_BYTES,
    help: 'encoded bytes of one image (data:, file:// or http); larger is a 400',
  },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export interface ServeDeps {
  /** Where the model runner comes from (default: the GPU runner of the model issue). */
  runnerFactory?: RunnerFactory;
  /** Startup lines (default: stdout). */
  print?: (line: string) => void;
  /** Resolves to start the drain (default: SIGTERM or SIGINT). */
  stop?: Promise<unknown>;
}

export async function runServe(argv: string[], deps: ServeDeps = {}): Promise<number> {
  const { flags, positional } = parseArgs(argv, specs);
  const print = deps.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (flags.help) {
    print(formatHelp('usage: dawnllm serve MODEL [options]', specs).trimEnd());
    return 0;
  }
  if (positional.length > 1) throw new UsageError(`serve takes one MODEL, got ${positional.join(' ')}`);
  // No MODEL: the bundled default model (assets/default-model), as `make serve` runs it.
  const given = (flags.model as string | undefined) ?? positional[0];
  const modelDir = given ?? defaultModelDir();
  if (given === undefined) print(`no MODEL given: serving the bundled default model ${modelDir}`);
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory())
    throw new ModelError('DAWN_ERR_MODEL_FILE_MISSING', `serve: ${modelDir} is not a directory`, {
      hint: 'MODEL is a local checkpoint directory with config.json, *.safetensors and tokenizer.json',
    });
  const num = (name: string) => flags[name] as number;
  const names = ((flags['served-model-name'] as string | undefined) ?? given ?? DEFAULT_MODEL_NAME)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // As vLLM: the flag, else the VLLM_API_KEY environment variable (DAWNLLM_API_KEY too).
  const apiKeyText =
    (flags['api-key'] as string | undefined) ?? process.env.VLLM_API_KEY ?? process.env.DAWNLLM_API_KEY;
  const apiKeys = (apiKeyText ?? '').split(',').filter(Boolean);

  const media = mediaFlags(flags);
  const processorKwargs = mmProcessorKwargs(flags['mm-processor-kwargs'] as string | undefined);

  print(`detected format: ${describeScheme(await readQuantScheme(modelDir))}`);
  const host = new ModelHost(names, modelDir);
  const { app } = buildApp(host, {
    apiKeys,
    bodyLimitBytes: num('max-request-body-bytes'),
    maxModelLenHint: (flags['max-model-len'] as number | undefined) ?? undefined,
    media,
  });
  const address = await app.listen({ host: flags.host as string, port: num('port') });
  print(`listening on ${address} (GET /health returns 503 until the model is loaded)`);

  const stop = deps.stop ?? signalled();
  const drain = async () => {
    print(`shutting down: draining in-flight requests (grace ${num('shutdown-grace-s')} s)`);
    await shutdownApp(app, host, num('shutdown-grace-s') * 1000);
    print('shut down');
  };
  try {
    const loaded = await (deps.runnerFactory ?? defaultRunnerFactory)({
      modelDir,
      maxModelLen: (flags['max-model-len'] as number | undefined) ?? null,
      maxNumSeqs: num('max-num-seqs'),
      maxNumBatchedTokens: num('max-num-batched-tokens'),
      gpuMemoryUtilization: num('gpu-memory-utilization'),
      dtype: flags.dtype as string,
      quantization: flags.quantization as string,
      kvCacheDtype: flags['kv-cache-dtype'] as string,
      device: (flags.device as string | undefined) ?? null,
      imagesPerPrompt: media.limitPerPrompt.image,
      mmProcessorKwargs: processorKwargs,
      onProgress: print,
    });
    print(`loaded: ${loaded.format}`);
    for (const line of loaded.loadSummary) print(`  ${line}`);
    if (loaded.runner.multimodal !== undefined) print(`  image input: ${describeMedia(media)}`);
    const model = new ServingModel(loaded.runner, {
      modelDir,
      maxNumSeqs: num('max-num-seqs'),
      maxNumBatchedTokens: num('max-num-batched-tokens'),
      maxWaitingRequests: num('max-waiting-requests'),
      enablePrefixCaching: flags['enable-prefix-caching'] as boolean,
      chatTemplate: (flags['chat-template'] as string | undefined) ?? null,
      generationConfig: flags['generation-config'] as string,
    });
    const { runner } = loaded;
    print(
      `GPU KV cache size: ${model.engine.kvCacheSizeTokens} tokens (${runner.numKvBlocks} blocks of ${runner.blockSize})`,
    );
    host.setReady(model);
    print(`ready: serving "${host.modelName}" on ${address}/v1 (max_model_len ${model.maxModelLen})`);
  } catch (err) {
    host.setDead(err instanceof Error ? err.message : String(err));
    await app.close();
    throw err;
  }
  await stop;
  await drain();
  return 0;
}

function signalled(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/** The image-intake flags, checked before the port opens (a bad flag is a usage error, not a 400 per request). */
function mediaFlags(flags: Record<string, string | number | boolean | undefined>) {
  try {
    return mediaOptionsFrom({
      allowedLocalMediaPath: (flags['allowed-local-media-path'] as string | undefined) ?? null,
      allowedMediaDomains: (flags['allowed-media-domains'] as string | undefined) ?? null,
      limitMmPerPrompt: (flags['limit-mm-per-prompt'] as string | undefined) ?? null,
      fetchTimeoutS: (flags['media-fetch-timeout'] as number | undefined) ?? null,
      maxImageBytes: flags['max-image-bytes'] as number,
    });
  } catch (err) {
    if (err instanceof MediaOptionError) throw new UsageError(err.message);
    throw err;
  }
}

/** --mm-processor-kwargs: vLLM's JSON object; min_pixels / max_pixels are the keys Qwen-VL processors take. */
function mmProcessorKwargs(text: string | undefined): { minPixels?: number; maxPixels?: number } | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--mm-processor-kwargs: expected a JSON object like '{"max_pixels": 1003520}', got ${text}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError(`--mm-processor-kwargs: expected a JSON object, got ${text}`);
  const out: { minPixels?: number; maxPixels?: number } = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key !== 'min_pixels' && key !== 'max_pixels')
      throw new UsageError(
        `--mm-processor-kwargs: unknown key "${key}" (this model's processor takes min_pixels, max_pixels)`,
      );
    if (!(Number.isInteger(value) && (value as number) > 0))
      throw new UsageError(`--mm-processor-kwargs: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    out[key === 'min_pixels' ? 'minPixels' : 'maxPixels'] = value as number;
  }
  return out;
}

function describeMedia(m: ReturnType<typeof mediaOptionsFrom>): string {
  const local =
    m.allowedLocalMediaPaths.length > 0 ? `file:// under ${m.allowedLocalMediaPaths.join(', ')}` : 'no file://';
  const hosts = m.allowedMediaDomains === null ? 'any host' : m.allowedMediaDomains.join(', ');
  return (
    `up to ${m.limitPerPrompt.image} per prompt, ${(m.maxImageBytes / 2 ** 20).toFixed(1)} MiB each; data: URLs, ` +
    `${local}, http(s) from ${hosts} (timeout ${m.fetchTimeoutMs / 1000} s)`
  );
}

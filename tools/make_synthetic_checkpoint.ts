// Writes a synthetic Qwen3-VL-MoE checkpoint: random weights with the real parameter names and shapes in ModelOpt
// NVFP4 (BF16 router, lm_head, embeddings, norms and vision tower), sharded safetensors (≤ 4 GiB each) + index,
// config.json (transformers 5), hf_quant_config.json, generation_config.json, preprocessor_config.json, and a
// byte-level BPE tokenizer with exactly vocab_size ids and Qwen's chat template. Pure TypeScript and streamed tensor
// by tensor, so it runs on the GPU machine (no network, no Python) for the full 30B (~19 GB) in little memory.
//   npx tsx tools/make_synthetic_checkpoint.ts OUT_DIR [--preset 30b|small] [--layers N] [--hidden N] [--heads N]
//     [--kv-heads N] [--head-dim N] [--experts N] [--top-k N] [--moe-intermediate N] [--vocab N]
//     [--mrope-section T,H,W] [--rope-theta X] [--max-positions N] [--vision-depth N] [--vision-hidden N]
//     [--vision-heads N] [--vision-intermediate N] [--vision-positions N] [--deepstack I,J,K] [--seed N]
//     [--max-shard-bytes N]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { qwen3VlChatTemplate } from './synthetic/chat_template.js';
import {
  configJson,
  generationConfigJson,
  hfQuantConfigJson,
  preprocessorConfigJson,
} from './synthetic/config_files.js';
import { writeShards } from './synthetic/shards.js';
import { type SynthSpec, specFromFlags, synthFlagNames } from './synthetic/spec.js';
import { planTensors } from './synthetic/tensors.js';
import { tokenizerConfigJson, tokenizerJson } from './synthetic/tokenizer.js';

export interface SynthResult {
  dir: string;
  tensors: number;
  /** Bytes of the safetensors files (headers included). */
  weightBytes: number;
  seconds: number;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Writes the checkpoint `spec` describes into `dir` (created if missing; existing files of the same names replaced). */
export function makeSyntheticCheckpoint(
  dir: string,
  spec: SynthSpec,
  opts: { log?: (line: string) => void } = {},
): SynthResult {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  mkdirSync(dir, { recursive: true });
  const put = (name: string, text: string) => writeFileSync(join(dir, name), text);
  put('config.json', json(configJson(spec)));
  put('hf_quant_config.json', json(hfQuantConfigJson()));
  put('generation_config.json', json(generationConfigJson(spec)));
  put('preprocessor_config.json', json(preprocessorConfigJson()));
  put('tokenizer.json', JSON.stringify(tokenizerJson(spec.vocab)));
  put('tokenizer_config.json', json(tokenizerConfigJson(spec.vocab)));
  put('chat_template.jinja', qwen3VlChatTemplate);
  const tensors = planTensors(spec);
  const total = tensors.reduce((n, t) => n + t.bytes, 0);
  log(`${tensors.length} tensors, ${(total / 1e9).toFixed(2)} GB of weights → ${dir}`);
  let nextReport = 0;
  const step = Math.max(total / 20, 256 << 20);
  const weightBytes = writeShards(dir, tensors, {
    seed: spec.seed,
    maxShardBytes: spec.maxShardBytes,
    onProgress: ({ file, bytesWritten, totalBytes }) => {
      if (bytesWritten < nextReport && bytesWritten < totalBytes) return;
      nextReport = bytesWritten + step;
      const s = (performance.now() - t0) / 1000;
      log(
        `  ${file}: ${(bytesWritten / 1e9).toFixed(2)} / ${(totalBytes / 1e9).toFixed(2)} GB ` +
          `(${((100 * bytesWritten) / totalBytes).toFixed(0)}%, ${(bytesWritten / 1e6 / Math.max(s, 1e-3)).toFixed(0)} MB/s)`,
      );
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  log(`wrote ${weightBytes} bytes of safetensors (${(weightBytes / 1e9).toFixed(2)} GB) in ${seconds.toFixed(1)} s`);
  return { dir, tensors: tensors.length, weightBytes, seconds };
}

/** `OUT_DIR --flag value ...` → the directory and the flags (names without dashes). */
export function parseCliArgs(argv: readonly string[]): { dir: string; flags: Record<string, string> } {
  const flags: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!synthFlagNames.includes(name))
      throw new Error(`unknown flag --${name} (known: ${synthFlagNames.map((f) => `--${f}`).join(' ')})`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    flags[name] = value;
  }
  if (positional.length !== 1) throw new Error(`expected one output directory, got ${positional.length}`);
  return { dir: resolve(positional[0]), flags };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const { dir, flags } = parseCliArgs(process.argv.slice(2));
    const spec = specFromFlags(flags);
    console.log(
      `synthetic Qwen3-VL-MoE (NVFP4 ModelOpt): ${spec.layers} layers, hidden ${spec.hidden}, ` +
        `${spec.heads}/${spec.kvHeads} heads of ${spec.headDim}, ${spec.experts} experts top-${spec.topK} of ` +
        `${spec.moeIntermediate}, vocab ${spec.vocab}; vision depth ${spec.visionDepth} hidden ${spec.visionHidden}`,
    );
    makeSyntheticCheckpoint(dir, spec, { log: (l) => console.log(l) });
  } catch (err) {
    console.error(`make_synthetic_checkpoint: ${(err as Error).message}`);
    console.error('usage: npx tsx tools/make_synthetic_checkpoint.ts OUT_DIR [--preset 30b|small] [--layers N ...]');
    process.exit(2);
  }
}

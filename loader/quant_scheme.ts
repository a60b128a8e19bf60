// Format detection: which quantization scheme a checkpoint uses, read from config.json `quantization_config`
// and/or ModelOpt's hf_quant_config.json. An unknown scheme stops the load with its name; the tensors themselves
// are checked against the detected scheme later, parameter by parameter.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoaderError } from '../core/errors.js';
import {
  compressedTensorsFilter,
  emptyFilter,
  type ModuleFilter,
  modelOptFilter,
  moduleSegmentsFilter,
} from './module_filter.js';

export type Fp8Granularity = 'tensor' | 'channel' | 'block';

export type QuantScheme =
  | { kind: 'unquantized'; source: string }
  /** NVFP4 (W4A4), NVFP4_AWQ (with pre_quant_scale), W4A16_NVFP4; weight_scale_2 multiplies. */
  | { kind: 'modelopt_nvfp4'; algo: string; groupSize: 16; exclude: ModuleFilter; source: string }
  | {
      kind: 'modelopt_fp8';
      algo: string;
      granularity: Fp8Granularity;
      blockSize: [number, number] | null;
      exclude: ModuleFilter;
      source: string;
    }
  /** nvfp4-pack-quantized; weight_global_scale divides (it is 1 / weight_scale_2). */
  | { kind: 'ct_nvfp4'; groupSize: 16; exclude: ModuleFilter; source: string }
  | {
      kind: 'ct_fp8';
      granularity: Fp8Granularity;
      blockSize: [number, number] | null;
      exclude: ModuleFilter;
      source: string;
    }
  /** quant_method fp8 (DeepSeek / Qwen FP8): weight_scale_inv multiplies despite its name. */
  | {
      kind: 'fp8_block';
      granularity: Fp8Granularity;
      blockSize: [number, number] | null;
      exclude: ModuleFilter;
      source: string;
    };

export type QuantEncoding = 'nvfp4' | 'fp8';

export function schemeEncoding(s: QuantScheme): QuantEncoding | null {
  switch (s.kind) {
    case 'unquantized':
      return null;
    case 'modelopt_nvfp4':
    case 'ct_nvfp4':
      return 'nvfp4';
    default:
      return 'fp8';
  }
}

export function describeScheme(s: QuantScheme): string {
  switch (s.kind) {
    case 'unquantized':
      return 'unquantized (BF16/F16/F32)';
    case 'modelopt_nvfp4':
      return `ModelOpt NVFP4 (quant_algo ${s.algo}, group ${s.groupSize}, weight_scale_2 multiplies)`;
    case 'modelopt_fp8':
      return `ModelOpt FP8 (quant_algo ${s.algo}, ${granularityText(s.granularity, s.blockSize)} weight scales)`;
    case 'ct_nvfp4':
      return 'compressed-tensors nvfp4-pack-quantized (group 16, weight_global_scale divides)';
    case 'ct_fp8':
      return `compressed-tensors float-quantized FP8 (${granularityText(s.granularity, s.blockSize)} weight scales)`;
    case 'fp8_block':
      return `FP8 (quant_method fp8, ${granularityText(s.granularity, s.blockSize)} weight_scale_inv, multiplies)`;
  }
}

function granularityText(g: Fp8Granularity, block: [number, number] | null): string {
  return g === 'block' && block ? `block ${block[0]}×${block[1]}` : `per-${g}`;
}

type Json = Record<string, unknown>;

function unknownScheme(what: string, source: string, hint?: string): LoaderError {
  return new LoaderError('DAWN_ERR_LOADER_UNKNOWN_QUANT_SCHEME', `${source}: unsupported quantization ${what}`, {
    hint:
      hint ??
      'dawnllm reads ModelOpt NVFP4/NVFP4_AWQ/FP8, compressed-tensors nvfp4-pack-quantized and float-quantized FP8, quant_method fp8 (block), and unquantized checkpoints',
  });
}

function asObject(v: unknown): Json | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null;
}

function stringList(v: unknown, what: string, source: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new LoaderError(
      'DAWN_ERR_LOADER_QUANT_CONFIG',
      `${source}: ${what} must be a list of strings, found ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Reads config.json and hf_quant_config.json from a checkpoint directory. */
export async function readQuantScheme(dir: string): Promise<QuantScheme> {
  const read = async (name: string): Promise<unknown> => {
    const p = join(dir, name);
    if (!existsSync(p)) return null;
    try {
      return JSON.parse(await readFile(p, 'utf8'));
    } catch (err) {
      throw new LoaderError('DAWN_ERR_LOADER_QUANT_CONFIG', `${p} is not valid JSON: ${(err as Error).message}`);
    }
  };
  return detectQuantScheme(await read('config.json'), await read('hf_quant_config.json'));
}

export function detectQuantScheme(config: unknown, hfQuantConfig: unknown): QuantScheme {
  const qc = asObject(asObject(config)?.quantization_config);
  const hq = asObject(hfQuantConfig);
  if (hq) {
    const fromFile = modelOptFromHfQuantConfig(hq);
    if (qc) checkAgreement(fromFile, qc);
    return fromFile;
  }
  if (!qc) return { kind: 'unquantized', source: 'config.json (no quantization_config)' };
  const method = qc.quant_method;
  const source = 'config.json quantization_config';
  switch (typeof method === 'string' ? method.toLowerCase() : method) {
    case 'modelopt':
      return modelOptScheme(
        qc.quant_algo,
        qc.group_size,
        stringList(qc.ignore ?? qc.exclude_modules, 'ignore', source),
        source,
      );
    case 'compressed-tensors':
      return compressedTensorsScheme(qc, source);
    case 'fp8':
      return fp8Scheme(qc, source);
    default:
      throw unknownScheme(`quant_method ${JSON.stringify(method)}`, source);
  }
}

function modelOptFromHfQuantConfig(hq: Json): QuantScheme {
  const source = 'hf_quant_config.json';
  const q = asObject(hq.quantization);
  if (!q) throw new LoaderError('DAWN_ERR_LOADER_QUANT_CONFIG', `${source}: expected a "quantization" object`);
  return modelOptScheme(q.quant_algo, q.group_size, stringList(q.exclude_modules, 'exclude_modules', source), source);
}

const modelOptNvfp4Algos = ['NVFP4', 'NVFP4_AWQ', 'W4A16_NVFP4'];
const modelOptFp8Algos: Record<string, Fp8Granularity> = {
  FP8: 'tensor',
  FP8_PER_CHANNEL_PER_TOKEN: 'channel',
  FP8_PB_WO: 'block',
};

function modelOptScheme(algoRaw: unknown, groupSize: unknown, exclude: string[], source: string): QuantScheme {
  if (typeof algoRaw !== 'string') {
    throw new LoaderError('DAWN_ERR_LOADER_QUANT_CONFIG', `${source}: ModelOpt config has no quant_algo string`);
  }
  const algo = algoRaw.toUpperCase();
  const filter = modelOptFilter(exclude);
  if (modelOptNvfp4Algos.includes(algo)) {
    if (groupSize !== undefined && groupSize !== null && groupSize !== 16) {
      throw unknownScheme(`ModelOpt ${algo} with group_size ${JSON.stringify(groupSize)}`, source, 'NVFP4 uses 16');
    }
    return { kind: 'modelopt_nvfp4', algo, groupSize: 16, exclude: filter, source };
  }
  const granularity = modelOptFp8Algos[algo];
  if (granularity) {
    const blockSize: [number, number] | null = granularity === 'block' ? [128, 128] : null;
    return { kind: 'modelopt_fp8', algo, granularity, blockSize, exclude: filter, source };
  }
  throw unknownScheme(`ModelOpt quant_algo ${JSON.stringify(algoRaw)}`, source);
}

/** config.json and hf_quant_config.json must describe the same scheme when both are present. */
function checkAgreement(fromFile: QuantScheme, qc: Json): void {
  const method = typeof qc.quant_method === 'string' ? qc.quant_method.toLowerCase() : qc.quant_method;
  const algo = typeof qc.quant_algo === 'string' ? qc.quant_algo.toUpperCase() : qc.quant_algo;
  const fileAlgo = fromFile.kind === 'modelopt_nvfp4' || fromFile.kind === 'modelopt_fp8' ? fromFile.algo : null;
  if (method !== 'modelopt' || (algo !== undefined && algo !== fileAlgo)) {
    throw new LoaderError(
      'DAWN_ERR_LOADER_QUANT_CONFIG',
      `config.json quantization_config says quant_method ${JSON.stringify(qc.quant_method)} quant_algo ` +
        `${JSON.stringify(qc.quant_algo)} but hf_quant_config.json says ModelOpt ${fileAlgo}`,
      { hint: 'one of the two files is stale' },
    );
  }
}

function compressedTensorsScheme(qc: Json, source: string): QuantScheme {
  const groups = asObject(qc.config_groups);
  if (!groups || Object.keys(groups).length === 0) {
    throw new LoaderError('DAWN_ERR_LOADER_QUANT_CONFIG', `${source}: compressed-tensors config has no config_groups`);
  }
  const exclude = compressedTensorsFilter(stringList(qc.ignore, 'ignore', source));
  const schemes = Object.entries(groups).map(([name, g]) =>
    ctGroupScheme(name, asObject(g) ?? {}, qc.format, exclude, source),
  );
  const first = schemes[0];
  const differs = schemes.find((s) => describeScheme(s) !== describeScheme(first));
  if (differs) {
    throw unknownScheme(
      `mix of compressed-tensors schemes: ${describeScheme(first)} and ${describeScheme(differs)}`,
      source,
      'one scheme per checkpoint is supported',
    );
  }
  return first;
}

function ctGroupScheme(name: string, g: Json, topFormat: unknown, exclude: ModuleFilter, source: string): QuantScheme {
  const format = g.format ?? topFormat;
  const w = asObject(g.weights) ?? {};
  const where = `${source} config_groups.${name}`;
  if (format === 'nvfp4-pack-quantized') {
    if (w.num_bits !== 4 || w.type !== 'float' || (w.group_size ?? 16) !== 16) {
      throw unknownScheme(
        `nvfp4-pack-quantized weights ${JSON.stringify(w)}`,
        where,
        'expected num_bits 4, type float, group_size 16',
      );
    }
    return { kind: 'ct_nvfp4', groupSize: 16, exclude, source };
  }
  if (format === 'float-quantized' || (format === 'naive-quantized' && w.type === 'float')) {
    if (w.num_bits !== 8 || w.type !== 'float') {
      throw unknownScheme(
        `float-quantized weights ${JSON.stringify(w)}`,
        where,
        'expected num_bits 8, type float (FP8 E4M3)',
      );
    }
    const strategy = w.strategy;
    if (strategy === 'tensor' || strategy === 'channel') {
      return { kind: 'ct_fp8', granularity: strategy, blockSize: null, exclude, source };
    }
    if (strategy === 'block') {
      const bs = w.block_structure;
      if (!Array.isArray(bs) || bs.length !== 2 || !bs.every((x) => Number.isInteger(x) && x > 0)) {
        throw unknownScheme(`FP8 block strategy with block_structure ${JSON.stringify(bs)}`, where);
      }
      return { kind: 'ct_fp8', granularity: 'block', blockSize: [bs[0], bs[1]], exclude, source };
    }
    throw unknownScheme(`FP8 weight strategy ${JSON.stringify(strategy)}`, where, 'expected tensor, channel or block');
  }
  throw unknownScheme(`compressed-tensors format ${JSON.stringify(format)}`, where);
}

function fp8Scheme(qc: Json, source: string): QuantScheme {
  const fmt = qc.fmt ?? 'e4m3';
  if (fmt !== 'e4m3') throw unknownScheme(`fp8 fmt ${JSON.stringify(fmt)}`, source, 'only e4m3 is supported');
  const exclude =
    qc.modules_to_not_convert === undefined
      ? emptyFilter
      : moduleSegmentsFilter(stringList(qc.modules_to_not_convert, 'modules_to_not_convert', source));
  const bs = qc.weight_block_size;
  if (bs === undefined || bs === null)
    return { kind: 'fp8_block', granularity: 'tensor', blockSize: null, exclude, source };
  if (!Array.isArray(bs) || bs.length !== 2 || !bs.every((x) => Number.isInteger(x) && x > 0)) {
    throw new LoaderError(
      'DAWN_ERR_LOADER_QUANT_CONFIG',
      `${source}: weight_block_size must be [rows, cols], found ${JSON.stringify(bs)}`,
    );
  }
  return { kind: 'fp8_block', granularity: 'block', blockSize: [bs[0], bs[1]], exclude, source };
}

export function schemeExclude(s: QuantScheme): ModuleFilter {
  return s.kind === 'unquantized' ? emptyFilter : s.exclude;
}

// The Qwen3-VL-MoE text model on the GPU: load(gpu, dir, options) → model; forward over a packed batch of
// sequences (prefill chunks and decode tokens alike: new tokens, their positions and KV slots, each sequence's block
// table and context length) → logits of the rows asked for; release(). Per step it writes the small inputs
// (ids, positions, slots, block tables), records the step graph for this shape into one compute pass, submits,
// and reads back only the logits.
import { ModelError } from '../../core/errors.js';
import { TokenStep } from '../../kernels/attention_step.js';
import { readBuffer, readF32, writeBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Dispatch } from '../../kernels/gpu/dispatch.js';
import { embeddingTableFromBuffer, type EmbeddingTable } from '../../kernels/embedding.js';
import { createKvCache, KV_BLOCK_SIZE, type KvCache, type KvDtype, SLOT_SKIP } from '../../kernels/kv_cache.js';
import type { GemmPath } from '../../kernels/matmul_gemm.js';
import { type SampleResult, type SampleRow, Sampling, type SamplingBinding } from '../../kernels/sampling.js';
import type { UploadOptions } from '../../loader/upload.js';
import type { Qwen3VlMoeConfig } from './config.js';
import { ForwardAttention, type StepMode } from './forward_attention.js';
import { ForwardBuffers, type StepLimits } from './forward_buffers.js';
import { ForwardVisual, type SeqVisual, type VisualDispatches } from './forward_visual.js';
import { buildStepGraph, ForwardKernels, type GraphInputs, type StepGraph } from './forward_graph.js';
import { loadModelWeights, type ModelWeights } from './model_load.js';
import type { VisionWeights } from './vision_weights.js';

export interface Qwen3VlMoeLoadOptions {
  /** KV cache element type: bf16 (default), fp8e4m3, or f32 (tests: no storage rounding). */
  kvDtype?: KvDtype;
  /** KV blocks of 16 tokens per layer (default 256), or a rule given the uploaded weights' bytes. */
  numKvBlocks?: number | ((loaded: { weightBytes: number; config: Qwen3VlMoeConfig }) => number);
  /** New tokens one forward may run, all sequences together (default 256). */
  maxTokens?: number;
  /** Sequences one forward may run (default 16). */
  maxSeqs?: number;
  /** Longest sequence (default min(max_position_embeddings, numKvBlocks·16)). */
  maxModelLen?: number;
  /** Logit rows one forward may return (default maxSeqs; raise it to score every prompt position). */
  maxLogitRows?: number;
  /** Prefill GEMM path (default: tensor cores where the adapter has them, else tiled f32). */
  gemmPath?: GemmPath;
  upload?: UploadOptions;
}

/** One sequence's part of a step. */
export interface SeqStep {
  tokenIds: readonly number[];
  /** Per new token: its position (text: t = h = w) or its M-RoPE [t, h, w]. */
  positions: readonly (number | readonly [number, number, number])[];
  /** Per new token: block·16 + offset in the KV cache (SLOT_SKIP: not written). */
  slotMapping: readonly number[];
  /** Blocks covering positions [0, contextLen). */
  blockTable: readonly number[];
  /** Tokens in the cache after this step (attention length). */
  contextLen: number;
  /** Which of its new tokens' logits are read back; default: the request's `logits`. */
  logits?: LogitRows;
  /** Sample the token after its last new token on the GPU with these parameters (only the result is read back). */
  sample?: SampleRow;
  /** Vision features at image-token rows (replace their embeddings; deepstack adds after the first layers). */
  visual?: SeqVisual;
}

/** 'last': the last new token (the next-token distribution); 'all': every new token; 'none': no logits. */
export type LogitRows = 'last' | 'all' | 'none';

export interface ForwardRequest {
  seqs: readonly SeqStep[];
  /** Which rows' logits are read back for sequences that do not say (default 'last', 'none' when sampling). */
  logits?: LogitRows;
  /** Also read back the residual stream after the embedding and after each layer, and the final normed rows. */
  captureHidden?: boolean;
}

export interface ForwardResult {
  /** [rows, V] f32 of the rows read back, in token order (sequence by sequence). */
  logits: Float32Array;
  rows: number;
  /** Per sequence: its sampled token (and logprobs), or null where it asked for none. */
  samples: (SampleResult | null)[];
  /** With captureHidden: [embeddings, layer 0 … layer L−1 outputs, final normed], each [T, H]. */
  hidden?: Float32Array[];
}

// Decode batch sizes and prefill chunk lengths each get a graph; bind groups are cheap to keep.
const MAX_CACHED_GRAPHS = 64;

export class Qwen3VlMoeModel {
  readonly blockSize = KV_BLOCK_SIZE;
  private readonly graphs = new Map<string, StepGraph>();
  /** Made on the first step with vision features. */
  private visual: ForwardVisual | null = null;
  private released = false;

  private constructor(
    private readonly gpu: Gpu,
    readonly config: Qwen3VlMoeConfig,
    readonly numKvBlocks: number,
    readonly maxModelLen: number,
    readonly limits: StepLimits & { maxLogitRows: number },
    private readonly weights: ModelWeights,
    private readonly inputs: GraphInputs,
    private readonly attention: ForwardAttention,
    private readonly sampler: SamplingBinding,
  ) {}

  get vocabSize(): number {
    return this.config.text.vocabSize;
  }

  /** The checkpoint format as the loader described it. */
  get format(): string {
    return this.weights.format;
  }

  /** Weight bytes on the GPU and the upload time. */
  get weightBytes(): number {
    return this.weights.gpuBytes;
  }

  get loadMs(): number {
    return this.weights.loadMs;
  }

  /** The vision tower's weights (uploaded with the text model's, released with them): VisionEncoder.create's input. */
  get visionWeights(): VisionWeights {
    return this.weights.vision;
  }

  static async load(gpu: Gpu, dir: string, opts: Qwen3VlMoeLoadOptions = {}): Promise<Qwen3VlMoeModel> {
    const weights = await loadModelWeights(gpu, dir, opts.upload);
    try {
      const cfg = weights.config.text;
      const blocksOpt = opts.numKvBlocks ?? 256;
      const numKvBlocks =
        typeof blocksOpt === 'number'
          ? blocksOpt
          : blocksOpt({ weightBytes: weights.gpuBytes, config: weights.config });
      if (!(Number.isInteger(numKvBlocks) && numKvBlocks >= 1))
        throw new ModelError(
          'DAWN_ERR_MODEL_CONFIG',
          `qwen3_vl_moe: numKvBlocks ${numKvBlocks} must be an integer ≥ 1`,
        );
      const maxModelLen = opts.maxModelLen ?? Math.min(cfg.maxPositionEmbeddings, numKvBlocks * KV_BLOCK_SIZE);
      const maxSeqs = opts.maxSeqs ?? 16;
      const limits = {
        maxTokens: Math.max(opts.maxTokens ?? 256, maxSeqs), // a decode step of maxSeqs tokens must fit
        maxSeqs,
        maxBlocksPerSeq: Math.ceil(maxModelLen / KV_BLOCK_SIZE),
        maxLogitRows: Math.min(opts.maxLogitRows ?? maxSeqs, Math.max(opts.maxTokens ?? 256, maxSeqs)),
      };
      const kvDtype = opts.kvDtype ?? 'bf16';
      const format = weights.layers[0].gateUp.format;
      const bufs = new ForwardBuffers(gpu, cfg, limits);
      const kernels = await ForwardKernels.create(gpu, cfg, weights, bufs, {
        format,
        kvDtype,
        gemmPath: opts.gemmPath,
      });
      const caches: KvCache[] = weights.layers.map((_, l) =>
        createKvCache(gpu, `qwen3_vl_moe/kv_cache.${l}`, {
          numBlocks: numKvBlocks,
          numKvHeads: cfg.numKeyValueHeads,
          headDim: cfg.headDim,
          dtype: kvDtype,
        }),
      );
      const step = new TokenStep(gpu, limits.maxTokens, 'qwen3_vl_moe/step');
      const attention = await ForwardAttention.create(gpu, cfg, kvDtype, bufs, maxModelLen);
      const table: EmbeddingTable = embeddingTableFromBuffer(gpu, weights.embed.buffer, cfg.vocabSize, cfg.hiddenSize);
      const inputs: GraphInputs = { gpu, cfg, weights, kernels, bufs, table, caches, step, attention };
      // The sampler reads logits rows 0..n-1: the sampled rows come first in every step's logit rows.
      const sampler = (await Sampling.create(gpu)).bind(bufs.logits, { maxRows: maxSeqs, vocabSize: cfg.vocabSize });
      return new Qwen3VlMoeModel(
        gpu,
        weights.config,
        numKvBlocks,
        maxModelLen,
        limits,
        weights,
        inputs,
        attention,
        sampler,
      );
    } catch (err) {
      weights.release();
      throw err;
    }
  }

  private fail(message: string): never {
    throw new ModelError('DAWN_ERR_MODEL_INPUT', `qwen3_vl_moe forward: ${message}`);
  }

  /** Checks the request and writes the step's inputs; returns T and the logit rows. */
  /**
   * Checks the request and writes the step's inputs. Logit rows: first each sampling sequence's last token (the
   * sampler reads logits rows 0..numSampled-1), then the rows read back.
   */
  private writeInputs(req: ForwardRequest): {
    T: number;
    numSampled: number;
    rows: number[];
    mode: StepMode;
    starts: number[];
  } {
    const { seqs } = req;
    const lim = this.limits;
    const V = this.vocabSize;
    if (seqs.length < 1 || seqs.length > lim.maxSeqs) this.fail(`${seqs.length} sequences, expected 1..${lim.maxSeqs}`);
    const T = seqs.reduce((n, s) => n + s.tokenIds.length, 0);
    if (T < 1 || T > lim.maxTokens) this.fail(`${T} new tokens, expected 1..${lim.maxTokens}`);
    const ids = new Uint32Array(T);
    const pos = new Uint32Array(3 * T);
    const slots = new Uint32Array(T);
    const rows: number[] = [];
    const sampled: number[] = [];
    const sampleRows: SampleRow[] = [];
    const starts: number[] = [];
    let t0 = 0;
    seqs.forEach((s, i) => {
      const n = s.tokenIds.length;
      if (n < 1) this.fail(`sequence ${i} has no new tokens`);
      starts.push(t0);
      if (s.visual?.rows.some((r) => !(Number.isInteger(r) && r >= 0 && r < n)))
        this.fail(`sequence ${i}: vision rows [${s.visual.rows}] must index its ${n} new tokens`);
      if (s.positions.length !== n || s.slotMapping.length !== n)
        this.fail(`sequence ${i}: ${n} tokens but ${s.positions.length} positions and ${s.slotMapping.length} slots`);
      if (!(s.contextLen >= n && s.contextLen <= this.maxModelLen))
        this.fail(`sequence ${i}: contextLen ${s.contextLen} must be in [${n}, ${this.maxModelLen}]`);
      const blocks = Math.ceil(s.contextLen / KV_BLOCK_SIZE);
      if (s.blockTable.length < blocks || s.blockTable.length > lim.maxBlocksPerSeq)
        this.fail(
          `sequence ${i}: block table has ${s.blockTable.length} blocks, ${blocks}..${lim.maxBlocksPerSeq} needed`,
        );
      for (const b of s.blockTable.slice(0, blocks))
        if (!(Number.isInteger(b) && b >= 0 && b < this.numKvBlocks))
          this.fail(`sequence ${i}: block ${b} is not in [0, ${this.numKvBlocks})`);
      for (let j = 0; j < n; j++) {
        const id = s.tokenIds[j];
        if (!(Number.isInteger(id) && id >= 0 && id < V)) this.fail(`sequence ${i}: token ${id} is not in [0, ${V})`);
        ids[t0 + j] = id;
        const p = s.positions[j];
        const [pt, ph, pw] = typeof p === 'number' ? [p, p, p] : p;
        pos[t0 + j] = pt;
        pos[T + t0 + j] = ph;
        pos[2 * T + t0 + j] = pw;
        const slot = s.slotMapping[j];
        if (slot !== SLOT_SKIP && !(Number.isInteger(slot) && slot >= 0 && slot < this.numKvBlocks * KV_BLOCK_SIZE))
          this.fail(`sequence ${i}: slot ${slot} is outside the cache`);
        slots[t0 + j] = slot;
      }
      const which = s.logits ?? (s.sample ? 'none' : (req.logits ?? 'last'));
      if (which === 'all') for (let j = 0; j < n; j++) rows.push(t0 + j);
      else if (which === 'last') rows.push(t0 + n - 1);
      if (s.sample) {
        sampled.push(t0 + n - 1);
        sampleRows.push(s.sample);
      }
      t0 += n;
    });
    if (rows.length > lim.maxLogitRows)
      this.fail(`${rows.length} logit rows, the model was loaded for ${lim.maxLogitRows}`);
    this.sampler.setRows(sampleRows);
    const gpu = this.gpu;
    const b = this.inputs.bufs;
    writeBuffer(gpu, b.ids, 0, ids);
    writeBuffer(gpu, b.positions, 0, pos);
    writeBuffer(gpu, b.slotMapping, 0, slots);
    const allRows = [...sampled, ...rows];
    if (allRows.length) writeBuffer(gpu, b.logitRows, 0, Uint32Array.from(allRows));
    const shapes = seqs.map((s) => ({
      queryLen: s.tokenIds.length,
      contextLen: s.contextLen,
      blockTable: s.blockTable,
    }));
    this.attention.update(shapes);
    this.inputs.step.update(T);
    return { T, numSampled: sampled.length, rows, mode: ForwardAttention.modeOf(shapes), starts };
  }

  private async graphFor(T: number, R: number, mode: StepMode): Promise<StepGraph> {
    const key = `${mode}/${T}/${R}`;
    let g = this.graphs.get(key);
    if (g) {
      this.graphs.delete(key); // re-insert: the map's order is the eviction order
    } else {
      g = await buildStepGraph(this.inputs, T, R, mode);
      if (this.graphs.size >= MAX_CACHED_GRAPHS) this.graphs.delete(this.graphs.keys().next().value!);
    }
    this.graphs.set(key, g);
    return g;
  }

  async forward(req: ForwardRequest): Promise<ForwardResult> {
    if (this.released) this.fail('the model was released');
    const { T, numSampled, rows, mode, starts } = this.writeInputs(req);
    const graph = await this.graphFor(T, numSampled + rows.length, mode);
    const L = this.config.text.numHiddenLayers;
    let visual: VisualDispatches = { embed: [], layers: graph.layers.map(() => []) };
    if (req.seqs.some((s) => s.visual)) {
      this.visual ??= await ForwardVisual.create(this.gpu, {
        add: this.inputs.kernels.residualAdd,
        hidden: this.inputs.bufs.hidden,
        H: this.config.text.hiddenSize,
        maxTokens: this.limits.maxTokens,
        maxDeepstack: this.config.vision.deepstackVisualIndexes.length,
      });
      visual = this.visual.prepare(
        req.seqs.map((s) => s.visual),
        starts,
        L,
      );
    }
    const gpu = this.gpu;
    const b = this.inputs.bufs;
    const H = this.config.text.hiddenSize;
    const encoder = gpu.device.createCommandEncoder({ label: 'qwen3_vl_moe/step' });
    const stages: Dispatch[][] = [
      [...graph.embed, ...visual.embed],
      ...graph.layers.map((l, i) => [...l, ...visual.layers[i]]),
      graph.head,
    ];
    let hidden: GPUBuffer[] | undefined;
    if (!req.captureHidden) {
      const pass = encoder.beginComputePass({ label: 'qwen3_vl_moe/step' });
      for (const stage of stages) for (const d of stage) d.encode(pass);
      this.sampler.encode(pass);
      pass.end();
    } else {
      // Debug path: one pass per stage, the residual stream copied out between them.
      hidden = [];
      for (const [i, stage] of stages.entries()) {
        const pass = encoder.beginComputePass({ label: `qwen3_vl_moe/stage${i}` });
        for (const d of stage) d.encode(pass);
        if (i === stages.length - 1) this.sampler.encode(pass);
        pass.end();
        const copy = gpu.device.createBuffer({
          label: `qwen3_vl_moe/capture${i}`,
          size: T * H * 4,
          usage: 0x04 | 0x08,
        });
        encoder.copyBufferToBuffer(i === stages.length - 1 ? b.normed : b.hidden, 0, copy, 0, T * H * 4);
        hidden.push(copy);
      }
    }
    gpu.queue.submit([encoder.finish()]);
    const V = this.vocabSize;
    const samples = await this.sampler.read();
    const logits = rows.length
      ? new Float32Array(await readBuffer(gpu, b.logits, numSampled * V * 4, rows.length * V * 4))
      : new Float32Array(0);
    if (!rows.length && !numSampled) await gpu.sync('qwen3_vl_moe/step');
    let next = 0;
    const out: ForwardResult = {
      logits,
      rows: rows.length,
      samples: req.seqs.map((s) => (s.sample ? samples[next++] : null)),
    };
    if (hidden) {
      out.hidden = [];
      for (const buf of hidden) {
        out.hidden.push(await readF32(gpu, buf));
        buf.destroy();
      }
    }
    return out;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.graphs.clear();
    this.inputs.bufs.destroy();
    for (const c of this.inputs.caches) {
      c.k.destroy();
      c.v.destroy();
    }
    this.inputs.step.uniform.destroy();
    this.attention.destroy();
    this.inputs.kernels.destroy();
    this.sampler.destroy();
    this.visual?.destroy();
    this.weights.release();
  }
}

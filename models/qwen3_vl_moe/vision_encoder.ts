// The Qwen3-VL vision tower on the GPU: pixel_values of one image → merged features for the text model's image rows
// and the DeepStack features added after its first decoder layers (transformers' Qwen3VLVisionModel.forward).
// f32 activations, BF16 weights; one command buffer per image, every dispatch bound once per image grid (the
// plan for the last few grids is kept: screenshots of one size reuse theirs).
//   x = pixels · patchᵀ + b + interp(pos_embed)                           [N, D]   N = t·h·w patches
//   per block: x += proj(attn(rope(qkv(LN1 x)))) + b; x += fc2(gelu_tanh(fc1(LN2 x) + b)) + b
//   after block deepstack_visual_indexes[i]: ds[i] = fc2(gelu(fc1(LN(x as [N/4, 4D])) + b)) + b
//   embeds = fc2(gelu(fc1(LN(x) as [N/4, 4D]) + b)) + b                 [N/4, out]
import { ModelError } from '../../core/errors.js';
import { BiasAct } from '../../kernels/bias_act.js';
import { fromBf16Array } from '../../core/float16.js';
import { createBuffer, createBufferFrom, readBuffer, readF32, writeBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { BufferSlice, Dispatch } from '../../kernels/gpu/dispatch.js';
import { LayerNorm } from '../../kernels/layer_norm.js';
import { MatmulGemm } from '../../kernels/matmul_gemm.js';
import { PosEmbedInterp } from '../../kernels/pos_embed_interp.js';
import { VisionAttention } from '../../kernels/vision_attention.js';
import { VisionRope } from '../../kernels/vision_rope.js';
import type { Qwen3VlMoeConfig, Qwen3VlMoeVisionConfig } from './config.js';
import { visionLayout, type VisionLayout } from './vision_layout.js';
import { patchInputs, type VisionLinear, type VisionWeights } from './vision_weights.js';

export interface VisionFeatures {
  /** [numTokens, outHidden] */
  embeds: Float32Array;
  /** per deepstack index, [numTokens, outHidden] */
  deepstack: Float32Array[];
}

/** What encode reads from a processed image (models/qwen3_vl_moe/processor ProcessedImage). */
export interface VisionInput {
  /** [t·h·w, C·T·P·P] f32, rows in merge-block order. */
  pixelValues: Float32Array;
  /** [t, h, w] in patches. */
  gridThw: readonly [number, number, number];
}

export interface VisionEncoderOptions {
  /** At most this many patch rows per MLP chunk (default: as many as one storage binding holds). */
  mlpChunkRows?: number;
  /**
   * GPU bytes the kept plans (activation buffers per grid) may hold together; older grids' plans are freed first,
   * the current one is always kept. Default: unbounded (up to 4 plans). Serving passes the reserve it counted in
   * the memory budget (visionWorkingBytes of the largest image the processor allows).
   */
  planCacheBytes?: number;
}

/**
 * The most patches one image may have on this device: its pixels and its fused qkv activations are each one storage
 * binding (the MLP runs in row chunks, so it never bounds this).
 */
export function maxVisionPatches(c: Qwen3VlMoeVisionConfig, maxBindingBytes: number): number {
  return Math.floor(maxBindingBytes / (4 * Math.max(patchInputs(c), 3 * c.hiddenSize)));
}

/**
 * GPU bytes `encode` allocates for an image of `numPatches` patches (its plan), as `build` sizes them: the budget a
 * server reserves for images next to the KV cache. `maxBindingBytes` bounds the MLP chunk as in `build`.
 */
export function visionWorkingBytes(c: Qwen3VlMoeVisionConfig, numPatches: number, maxBindingBytes: number): number {
  const N = numPatches;
  const unit = c.spatialMergeSize ** 2;
  const T = Math.ceil(N / unit);
  const D = c.hiddenSize;
  const mlpRows = Math.min(N, Math.max(1, Math.floor(maxBindingBytes / (c.intermediateSize * 4))));
  const floats =
    N * patchInputs(c) + // pixels
    N * D * 4 + // x, ln, attn, tmp
    N * 3 * D + // qkv
    Math.max(mlpRows * c.intermediateSize, T * D * unit) + // mlp / merger input
    (1 + c.deepstackVisualIndexes.length) * T * c.outHiddenSize + // outputs
    N * (2 + 4 + 4); // rope positions, interpolation corners and weights
  return floats * 4;
}

const layerNormEps = 1e-6;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
/** Plans kept for reuse, by grid. */
const maxPlans = 4;

interface Kernels {
  gemm: MatmulGemm;
  norm: LayerNorm;
  bias: BiasAct;
  biasGeluTanh: BiasAct;
  biasGeluErf: BiasAct;
  biasResidual: BiasAct;
  rope: VisionRope;
  attention: VisionAttention;
  posEmbed: PosEmbedInterp;
}

/** Buffers and bound dispatches for one grid. */
interface Plan {
  layout: VisionLayout;
  pixels: GPUBuffer;
  /** embeds then each deepstack output, [tokens, out] each, `stride` bytes apart. */
  out: GPUBuffer;
  stride: number;
  dispatches: Dispatch[];
  buffers: GPUBuffer[];
}

export class VisionEncoder {
  private readonly plans = new Map<string, Plan>();

  private constructor(
    private readonly gpu: Gpu,
    private readonly weights: VisionWeights,
    readonly config: Qwen3VlMoeVisionConfig,
    private readonly k: Kernels,
    /** f32 [numPositionEmbeddings, D]. */
    private readonly posTable: GPUBuffer,
    private readonly opts: VisionEncoderOptions,
  ) {}

  /** GPU bytes the kept plans hold, and how many grids they cover. */
  get planCache(): { bytes: number; grids: number } {
    let bytes = 0;
    for (const p of this.plans.values()) for (const b of p.buffers) bytes += b.size;
    return { bytes, grids: this.plans.size };
  }

  /** The GEMM path ('tiled' f32, or f16 tensor cores): tests and benchmarks state their tolerance by it. */
  get gemmPath(): string {
    return this.k.gemm.path;
  }

  /** Only `config.vision` is read. */
  static async create(
    gpu: Gpu,
    weights: VisionWeights,
    config: Pick<Qwen3VlMoeConfig, 'vision'>,
    opts: VisionEncoderOptions = {},
  ): Promise<VisionEncoder> {
    const cfg = config.vision;
    const D = cfg.hiddenSize;
    if (D % cfg.numHeads || (D / cfg.numHeads) % 4)
      throw new ModelError(
        'DAWN_ERR_MODEL_CONFIG',
        `vision hidden ${D} over ${cfg.numHeads} heads: the head dim must be a whole multiple of 4`,
      );
    if (weights.blocks.length !== cfg.depth || weights.deepstack.length !== cfg.deepstackVisualIndexes.length)
      throw new ModelError(
        'DAWN_ERR_MODEL_WEIGHTS',
        `vision weights have ${weights.blocks.length} blocks and ${weights.deepstack.length} deepstack mergers, ` +
          `the config says ${cfg.depth} and ${cfg.deepstackVisualIndexes.length}`,
      );
    const headDim = D / cfg.numHeads;
    const [gemm, norm, bias, biasGeluTanh, biasGeluErf, biasResidual, rope, attention, posEmbed] = await Promise.all([
      MatmulGemm.create(gpu, { format: 'bf16' }),
      LayerNorm.create(gpu),
      BiasAct.create(gpu, { act: 'none', bias: true }),
      BiasAct.create(gpu, { act: 'gelu_tanh', bias: true }),
      BiasAct.create(gpu, { act: 'gelu_erf', bias: true }),
      BiasAct.create(gpu, { act: 'none', bias: true, residual: true }),
      VisionRope.create(gpu, { headDim }),
      VisionAttention.create(gpu, { headDim }),
      PosEmbedInterp.create(gpu),
    ]);
    const k = { gemm, norm, bias, biasGeluTanh, biasGeluErf, biasResidual, rope, attention, posEmbed };
    // pos_embed_interp reads an f32 table; the checkpoint's is BF16 (a few MB: widened once on the host).
    const tableBytes = cfg.numPositionEmbeddings * D * 2;
    const bf16 = new Uint16Array(await readBuffer(gpu, weights.posEmbed, 0, tableBytes));
    const posTable = createBufferFrom(gpu, 'vision/pos_embed_f32', fromBf16Array(bf16));
    return new VisionEncoder(gpu, weights, cfg, k, posTable, opts);
  }

  /** Encodes one image (or t frames); returns its merged and deepstack features. */
  async encode(img: VisionInput): Promise<VisionFeatures> {
    const plan = this.plan(img.gridThw);
    const { layout } = plan;
    const expected = layout.numPatches * patchInputs(this.config);
    if (img.pixelValues.length !== expected)
      throw new ModelError(
        'DAWN_ERR_MODEL_VISION',
        `pixel values: ${img.pixelValues.length} floats for grid [${layout.gridThw.join(', ')}], expected ` +
          `${layout.numPatches} patches × ${patchInputs(this.config)} = ${expected}`,
      );
    writeBuffer(this.gpu, plan.pixels, 0, img.pixelValues);
    const encoder = this.gpu.device.createCommandEncoder({ label: 'vision_encode' });
    const pass = encoder.beginComputePass({ label: 'vision_encode' });
    for (const d of plan.dispatches) d.encode(pass);
    pass.end();
    this.gpu.queue.submit([encoder.finish()]);
    const all = await readF32(this.gpu, plan.out);
    const n = layout.numTokens * this.config.outHiddenSize;
    const at = (i: number) => all.slice((i * plan.stride) / 4, (i * plan.stride) / 4 + n);
    return { embeds: at(0), deepstack: this.config.deepstackVisualIndexes.map((_, i) => at(i + 1)) };
  }

  /** Records the encode dispatches of a grid into `pass` (benchmarks time this; pixels stay as last written). */
  encodePass(gridThw: readonly [number, number, number], pass: GPUComputePassEncoder): void {
    for (const d of this.plan(gridThw).dispatches) d.encode(pass);
  }

  /** The (cached) plan for a grid. */
  private plan(gridThw: readonly [number, number, number]): Plan {
    const key = gridThw.join('x');
    let plan = this.plans.get(key);
    if (plan) {
      this.plans.delete(key); // re-insert: most recent last
      this.plans.set(key, plan);
      return plan;
    }
    plan = this.build(visionLayout(this.config, gridThw));
    this.plans.set(key, plan);
    const budget = this.opts.planCacheBytes ?? Infinity;
    const bytesOf = (p: Plan) => p.buffers.reduce((sum, b) => sum + b.size, 0);
    let total = 0;
    for (const p of this.plans.values()) total += bytesOf(p);
    while (this.plans.size > 1 && (this.plans.size > maxPlans || total > budget)) {
      const [oldKey, old] = this.plans.entries().next().value!;
      this.plans.delete(oldKey);
      total -= bytesOf(old);
      for (const b of old.buffers) b.destroy();
    }
    return plan;
  }

  private build(layout: VisionLayout): Plan {
    const { gpu, k, weights: w, config: c } = this;
    const N = layout.numPatches;
    const T = layout.numTokens;
    const D = c.hiddenSize;
    const I = c.intermediateSize;
    const unit = c.spatialMergeSize ** 2;
    const M = D * unit;
    const O = c.outHiddenSize;
    const buffers: GPUBuffer[] = [];
    const buf = (name: string, floats: number) => {
      const b = createBuffer(gpu, `vision/${name}`, floats * 4);
      buffers.push(b);
      return b;
    };
    const from = (name: string, data: ArrayBufferView) => {
      const b = createBufferFrom(gpu, `vision/${name}`, data);
      buffers.push(b);
      return b;
    };
    const pixels = buf('pixels', N * patchInputs(c));
    const x = buf('x', N * D);
    const ln = buf('ln', N * D);
    const qkv = buf('qkv', N * 3 * D);
    const attn = buf('attn', N * D);
    const tmp = buf('tmp', N * D);
    // The MLP's [rows, I] intermediate is the largest activation: it runs over row chunks whose slices each fit one
    // binding (chunk starts at multiples of the offset alignment).
    const align = gpu.caps.minStorageBufferOffsetAlignment;
    const limit = gpu.caps.maxStorageBufferBindingSize;
    const rowAlign = align / gcd(align, D * 4);
    const fit = Math.floor(limit / (I * 4) / rowAlign) * rowAlign;
    const wanted = this.opts.mlpChunkRows ? Math.ceil(this.opts.mlpChunkRows / rowAlign) * rowAlign : N;
    const mlpRows = Math.min(N, fit, wanted);
    const tooBig = [
      ['pixels', N * patchInputs(c)],
      ['qkv', N * 3 * D],
      ['mlp chunk', mlpRows * I],
    ].find(([, floats]) => (floats as number) * 4 > limit);
    if (tooBig || mlpRows < 1)
      throw new ModelError(
        'DAWN_ERR_MODEL_VISION',
        `image grid [${layout.gridThw.join(', ')}] (${N} patches) needs more than the device's ${limit}-byte storage ` +
          `binding for its ${tooBig ? tooBig[0] : 'mlp'} activations; use a smaller image (max_pixels)`,
      );
    const mlp = buf('mlp', Math.max(mlpRows * I, T * M));
    // Output slices start at the device's binding alignment.
    const stride = Math.ceil((T * O * 4) / align) * align;
    const out = buf('out', ((1 + c.deepstackVisualIndexes.length) * stride) / 4);
    const positions = from('positions', layout.rowCol);
    const interpIndex = from('interp_index', layout.interpIndex);
    const interpWeight = from('interp_weight', layout.interpWeight);
    const cuSeqlens = from('cu_seqlens', layout.cuSeqlens);
    const outSlice = (i: number) => ({ buffer: out, offset: i * stride, size: T * O * 4 });

    const d: Dispatch[] = [];
    const rowSlice = (b: GPUBuffer, r0: number, rows: number, cols: number): BufferSlice => ({
      buffer: b,
      offset: r0 * cols * 4,
      size: rows * cols * 4,
    });
    /** y = x · Wᵀ + b (+ act), or y += x · Wᵀ + b with residual (through `scratch`). */
    const linear = (
      L: VisionLinear,
      input: BufferSlice,
      rows: number,
      y: BufferSlice,
      tag: string,
      act: 'none' | 'gelu_tanh' | 'gelu_erf' | 'residual' = 'none',
      scratch: BufferSlice = tmp,
    ) => {
      const cols = L.weight.N;
      const target = act === 'residual' ? scratch : y;
      d.push(k.gemm.bind({ x: input, weight: L.weight, y: target }, { M: rows }, `vision/${tag}`));
      const shape = { rows, cols };
      if (act === 'residual') d.push(k.biasResidual.bind({ x: scratch, b: L.bias, h: y }, shape, `vision/${tag}_bias`));
      else {
        const kernel = act === 'gelu_tanh' ? k.biasGeluTanh : act === 'gelu_erf' ? k.biasGeluErf : k.bias;
        d.push(kernel.bind({ x: target, b: L.bias }, shape, `vision/${tag}_bias`));
      }
    };
    const norm = (n: { weight: GPUBuffer; bias: GPUBuffer }, rows: number, cols: number, tag: string) =>
      d.push(k.norm.bind({ x, w: n.weight, b: n.bias, out: ln }, { rows, cols, eps: layerNormEps }, `vision/${tag}`));

    linear(w.patch, pixels, N, x, 'patch_embed');
    d.push(
      k.posEmbed.bind(
        { x, table: this.posTable, index: interpIndex, weight: interpWeight },
        { rows: N, cols: D, tableRows: c.numPositionEmbeddings },
        'vision/pos_embed',
      ),
    );
    for (const [b, B] of w.blocks.entries()) {
      norm(B.norm1, N, D, `block${b}/norm1`);
      linear(B.qkv, ln, N, qkv, `block${b}/qkv`);
      d.push(k.rope.bind({ qkv, positions }, { tokens: N, heads: c.numHeads }, `vision/block${b}/rope`));
      d.push(
        k.attention.bind(
          { qkv, cuSeqlens, out: attn },
          { tokens: N, heads: c.numHeads, segments: layout.gridThw[0] },
          `vision/block${b}/attn`,
        ),
      );
      linear(B.proj, attn, N, x, `block${b}/proj`, 'residual');
      norm(B.norm2, N, D, `block${b}/norm2`);
      for (let r0 = 0; r0 < N; r0 += mlpRows) {
        const rows = Math.min(mlpRows, N - r0);
        const tag = `block${b}/${mlpRows < N ? `rows${r0}/` : ''}`;
        linear(B.fc1, rowSlice(ln, r0, rows, D), rows, mlp, `${tag}fc1`, 'gelu_tanh');
        const [xs, ts] = [rowSlice(x, r0, rows, D), rowSlice(tmp, r0, rows, D)];
        linear(B.fc2, mlp, rows, xs, `${tag}fc2`, 'residual', ts);
      }
      const di = c.deepstackVisualIndexes.indexOf(b);
      if (di >= 0) {
        const m = w.deepstack[di];
        norm(m.norm, T, M, `deepstack${di}/norm`); // over the grouped 4·D vector
        linear(m.fc1, ln, T, mlp, `deepstack${di}/fc1`, 'gelu_erf');
        linear(m.fc2, mlp, T, outSlice(1 + di), `deepstack${di}/fc2`);
      }
    }
    norm(w.merger.norm, N, D, 'merger/norm'); // per patch, then read as [N/4, 4·D]
    linear(w.merger.fc1, ln, T, mlp, 'merger/fc1', 'gelu_erf');
    linear(w.merger.fc2, mlp, T, outSlice(0), 'merger/fc2');
    return { layout, pixels, out, stride, dispatches: d, buffers };
  }

  destroy(): void {
    for (const p of this.plans.values()) for (const b of p.buffers) b.destroy();
    this.plans.clear();
    this.k.rope.destroy();
    this.posTable.destroy();
  }
}

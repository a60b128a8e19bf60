// One step of the text forward as a fixed list of dispatches, bound once per step shape (mode, T new tokens,
// R logit rows) and re-recorded every step with that shape: embedding → per layer [RMSNorm → qkv projection →
// q/k norm + M-RoPE + paged-KV write → attention → o_proj into the residual → RMSNorm → MoE block (router, experts,
// weighted combine into the residual)] → final RMSNorm → lm_head on the R chosen rows. Small steps (matvec path)
// fold each layer's two RMSNorms into their consumers (the qkv matvec's and the MoE decode matvecs' rmsNorm
// prologue, reading the residual stream directly): two dispatches fewer per layer. Stages are kept apart
// (embedding, each layer, head) so a debug run can copy the residual stream out between them; a normal step
// records them all into one compute pass.
import { KernelError } from '../../core/errors.js';
import type { TokenStep } from '../../kernels/attention_step.js';
import { ResidualAdd } from '../../kernels/elementwise.js';
import { Embedding, type EmbeddingTable } from '../../kernels/embedding.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Dispatch } from '../../kernels/gpu/dispatch.js';
import type { KvCache, KvDtype } from '../../kernels/kv_cache.js';
import { type GemmPath, MatmulGemm } from '../../kernels/matmul_gemm.js';
import { Matvec, matvecVariantFor } from '../../kernels/matvec.js';
import { MoeBlock, type MoeBlockBinding, type MoeScratch } from '../../kernels/moe_block.js';
import { RmsNorm } from '../../kernels/rms_norm.js';
import { QkNormRope } from '../../kernels/rope.js';
import type { GpuWeight, WeightFormat } from '../../kernels/weight_format.js';
import type { Qwen3VlMoeTextConfig } from './config.js';
import type { ForwardAttention, StepMode } from './forward_attention.js';
import type { ForwardBuffers } from './forward_buffers.js';
import type { ModelWeights } from './model_load.js';

/** Steps of at most this many tokens run their dense projections as matvec (decode), larger ones as GEMM. */
export const MATVEC_MAX_TOKENS = 16;

/** Rows sharing one weight read: the largest power of two ≤ min(rows, 16), so few pipeline variants exist. */
function mTileFor(rows: number): number {
  return 2 ** Math.floor(Math.log2(Math.min(rows, 16)));
}

export interface StepGraph {
  mode: StepMode;
  tokens: number;
  logitRows: number;
  embed: Dispatch[];
  layers: Dispatch[][];
  head: Dispatch[];
}

/** Kernels and per-layer bindings that do not depend on the step shape, made once at load. */
export class ForwardKernels {
  private constructor(
    readonly embedding: Embedding,
    readonly rmsNorm: RmsNorm,
    readonly rope: QkNormRope,
    readonly gemm: MatmulGemm,
    readonly residualAdd: ResidualAdd,
    /** One per layer, bound to the normed input and (in place) the residual stream. */
    readonly moe: MoeBlockBinding[],
    private readonly scratch: MoeScratch,
  ) {}

  static async create(
    gpu: Gpu,
    cfg: Qwen3VlMoeTextConfig,
    weights: ModelWeights,
    bufs: ForwardBuffers,
    o: { format: WeightFormat; kvDtype: KvDtype; gemmPath?: GemmPath },
  ): Promise<ForwardKernels> {
    const blocks = await Promise.all(
      weights.layers.map((lw, l) =>
        MoeBlock.create(
          gpu,
          { router: lw.router, gateUp: lw.gateUp, down: lw.down },
          { topK: cfg.numExpertsPerTok, normTopk: cfg.normTopkProb, gemmPath: o.gemmPath, decodeRmsNorm: true },
          `layer${l}/moe`,
        ),
      ),
    );
    const scratch = blocks[0].createScratch(bufs.limits.maxTokens, 'qwen3_vl_moe/moe_scratch');
    // decode: the MoE's matvecs normalize the residual stream themselves (post_attention_layernorm)
    const moe = blocks.map((block, l) =>
      block.bind({
        x: bufs.normed,
        out: bufs.hidden,
        scratch,
        norm: { x: bufs.hidden, weight: weights.layers[l].postAttnNorm, eps: cfg.rmsNormEps },
      }),
    );
    return new ForwardKernels(
      await Embedding.create(gpu, { dst: 'f32' }),
      await RmsNorm.create(gpu, { src: 'f32', dst: 'f32' }),
      await QkNormRope.create(gpu, {
        numQHeads: cfg.numAttentionHeads,
        numKvHeads: cfg.numKeyValueHeads,
        headDim: cfg.headDim,
        cacheDtype: o.kvDtype,
      }),
      await MatmulGemm.create(gpu, { format: o.format, path: o.gemmPath }),
      await ResidualAdd.create(gpu, { src: 'f32' }),
      moe,
      scratch,
    );
  }

  destroy(): void {
    const s = this.scratch;
    for (const b of [s.topkIds, s.topkWeights, s.gateUp, s.act, s.expertOut]) b.destroy();
    const r = s.routing;
    for (const b of [r.routing, r.expertOffsets, r.counts, r.dispatchArgs]) b.destroy();
  }
}

export interface GraphInputs {
  gpu: Gpu;
  cfg: Qwen3VlMoeTextConfig;
  weights: ModelWeights;
  kernels: ForwardKernels;
  bufs: ForwardBuffers;
  table: EmbeddingTable;
  caches: KvCache[];
  step: TokenStep;
  attention: ForwardAttention;
}

/**
 * A dense projection over T rows: matvec for small T (one weight read shared by up to 16 rows), else GEMM. `norm`:
 * x is un-normed and the matvec applies that RMSNorm in its prologue (matvec path only).
 */
async function projection(
  g: GraphInputs,
  weight: GpuWeight,
  x: GPUBuffer,
  out: GPUBuffer,
  T: number,
  accumulate: boolean,
  norm?: { weight: GPUBuffer; eps: number },
): Promise<Dispatch[]> {
  if (T <= MATVEC_MAX_TOKENS) {
    const mv = await Matvec.create(
      g.gpu,
      matvecVariantFor(g.gpu, weight, {
        act: 'f32',
        out: 'f32',
        mTile: mTileFor(T),
        epilogue: accumulate ? 'accumulate' : 'none',
        rmsNorm: norm !== undefined,
      }),
    );
    return [mv.bind({ x, weight, out, normWeight: norm?.weight }, { M: T, eps: norm?.eps })];
  }
  if (norm)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `projection ${weight.label}: the RMSNorm prologue needs the matvec path (T ≤ ${MATVEC_MAX_TOKENS})`,
    );
  if (!accumulate) return [g.kernels.gemm.bind({ x, weight, y: out }, { M: T })];
  return [
    g.kernels.gemm.bind({ x, weight, y: g.bufs.projOut }, { M: T }),
    g.kernels.residualAdd.bind({ h: out, y: g.bufs.projOut }, T * weight.N),
  ];
}

/**
 * The MoE block of a layer for T tokens. Looked up at record time, not bound into the graph: the block's prefill
 * path sets its pair count when asked for T (one uniform write), and another step shape may have changed it.
 */
function moeStage(binding: MoeBlockBinding, T: number): Dispatch {
  return {
    label: `${binding.label}[T=${T}]`,
    encode(pass) {
      binding.forTokens(T).encode(pass);
    },
  };
}

export async function buildStepGraph(g: GraphInputs, T: number, R: number, mode: StepMode): Promise<StepGraph> {
  const { cfg, weights: w, kernels: k, bufs: b } = g;
  const H = cfg.hiddenSize;
  const eps = cfg.rmsNormEps;
  const rope = { theta: cfg.ropeTheta, mropeSection: cfg.mropeSection, eps };
  const embed = k.embedding.bind({ ids: b.ids, out: b.hidden }, g.table, T, 'embed');
  const layers: Dispatch[][] = [];
  for (const [l, lw] of w.layers.entries()) {
    const p = `layer${l}`;
    // small steps: input_layernorm inside the qkv matvec, post_attention_layernorm inside the MoE's decode matvecs
    const qkv =
      T <= MATVEC_MAX_TOKENS
        ? await projection(g, lw.qkv, b.hidden, b.qkv, T, false, { weight: lw.inputNorm, eps })
        : [
            k.rmsNorm.bind(
              { x: b.hidden, w: lw.inputNorm, out: b.normed },
              { rows: T, cols: H, eps },
              `${p}/input_norm`,
            ),
            ...(await projection(g, lw.qkv, b.normed, b.qkv, T, false)),
          ];
    const postNorm =
      k.moe[l].pathFor(T) === 'decode'
        ? []
        : [
            k.rmsNorm.bind(
              { x: b.hidden, w: lw.postAttnNorm, out: b.normed },
              { rows: T, cols: H, eps },
              `${p}/post_norm`,
            ),
          ];
    layers.push([
      ...qkv,
      k.rope.bind(
        {
          qkv: b.qkv,
          positions: b.positions,
          qNorm: lw.qNorm,
          kNorm: lw.kNorm,
          slotMapping: b.slotMapping,
          cache: g.caches[l],
        },
        g.step,
        rope,
        {},
        `${p}/qk_norm_rope`,
      ),
      ...g.attention.bind(l, g.caches[l], mode),
      ...(await projection(g, lw.o, b.attnOut, b.hidden, T, true)),
      ...postNorm,
      moeStage(k.moe[l], T),
    ]);
  }
  const head = [k.rmsNorm.bind({ x: b.hidden, w: w.norm, out: b.normed }, { rows: T, cols: H, eps }, 'final_norm')];
  if (R > 0) {
    // lm_head as a one-expert grouped matvec: entry p reads token row logitRows[p], so only R rows are computed.
    const lmHead = await Matvec.create(
      g.gpu,
      matvecVariantFor(g.gpu, w.lmHead, { act: 'f32', out: 'f32', grouped: true, mTile: mTileFor(R) }),
    );
    head.push(
      lmHead.bind(
        { x: b.normed, weight: w.lmHead, out: b.logits, tileExperts: b.logitTiles, entryRows: b.logitRows },
        { M: R, numXRows: T },
        'lm_head',
      ),
    );
  }
  return { mode, tokens: T, logitRows: R, embed, layers, head };
}

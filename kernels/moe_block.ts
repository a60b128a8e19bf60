// moe_block: the sparse MoE of one decoder layer (HF Qwen3VLMoeTextSparseMoeBlock, no shared expert) as a short,
// fixed list of dispatches, composed from the router, the grouped matvec / GEMM, MoeAlign and the MoE combine:
//   out[t] = residual[t] + Σ_j w[t, j] · down_e(silu(gate_e(x[t])) · up_e(x[t])),  e = ids[t, j]
// where (ids, w) = top-k of softmax(x · Wgᵀ) in f32, renormalized when norm_topk_prob (kernels/moe_router.wgsl).
//   decode  (T ≤ maxDecodeTokens): router logits (dense matvec) → router → grouped matvec gate_up with the silu·up
//           epilogue (one entry per pair, tile expert = the router's id, so nothing is grouped or read back) → down
//           projection + routing weights + sum over k + residual in one dispatch (moe_block_down.wgsl): 4
//           dispatches; 3 with decodeRouter 'fused' (logits inside the router kernel). Where the fused down kernel
//           cannot take the down weight (preScale, larger than one binding): grouped matvec down → combine, one more.
//           With decodeRmsNorm the layer's RMSNorm runs inside the logits and gate_up matvecs (their rmsNorm
//           prologue, reading the un-normed rows bind's `norm.x`), so the caller needs no norm dispatch for decode.
//   prefill (larger T): router logits (dense f32 GEMM) → router → MoeAlign (pairs grouped by expert on the GPU,
//           indirect dispatch arguments) → grouped GEMM gate_up → silu·mul → grouped GEMM down → combine: 7.
// Buffers: x (T, H) f32, the normed input · out (T, H) f32 · residual (T, H) f32 (option inPlace false), or none
// to add in place into out (the residual stream, the default). Scratch (router output, logits, intermediate
// activations, routing) comes from createScratch and can be shared by every layer of the same shape: dispatches in
// one pass run in order.
// The weights: router [E, H] (bf16 or f32), gateUp [E, 2I, H] (gate rows first; nvfp4 with numRowGroups 2 keeps a
// global scale per half), down [E, H, I], any kernels/weight_format.ts format.
import { KernelError } from '../core/errors.js';
import { MoeCombine, SiluMul } from './elementwise.js';
import { createBuffer, createBufferFrom } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, sliceBytes } from './gpu/dispatch.js';
import { type GemmDispatch, type GemmPath, MatmulGemm, type MatmulGemmVariant } from './matmul_gemm.js';
import { Matvec, matvecVariantFor } from './matvec.js';
import { createMoeRouting, MoeAlign, type MoeAlignDispatch, type MoeRouting } from './moe_align.js';
import { MoeDownCombine, moeDownUnsupported } from './moe_block_down.js';
import { MoeRouter } from './moe_router.js';
import type { GpuWeight } from './weight_format.js';

export interface MoeBlockWeights {
  router: GpuWeight;
  gateUp: GpuWeight;
  down: GpuWeight;
}

export interface MoeBlockOptions {
  topK: number;
  /** norm_topk_prob: renormalize the k routing weights to sum to 1. */
  normTopk: boolean;
  /** Token counts up to this take the decode path (default 8; 0: always the prefill path). */
  maxDecodeTokens?: number;
  /**
   * Decode: the down projection, routing weights, sum over k and residual in one dispatch (moe_block_down.wgsl)
   * instead of a grouped matvec + combine. Default: wherever the down weight allows (moeDownUnsupported).
   */
  fusedDown?: boolean;
  /**
   * Decode router logits: 'matvec' (default) runs x · Wgᵀ as a dense matvec over many workgroups, then the router
   * kernel reads the logits; 'fused' computes them inside the router kernel, one workgroup per token: one dispatch
   * fewer, but the whole router weight (512 KB for 128 × 2048 bf16) streams through a single SM, which the device
   * must show to be faster before it becomes the default. Prefill always uses a dense f32 GEMM for the logits.
   */
  decodeRouter?: 'fused' | 'matvec';
  /**
   * Decode applies the input RMSNorm itself (rmsNorm prologue of the logits and gate_up matvecs); bind then takes
   * `norm` (un-normed rows, weight, eps). Prefill still reads the normed x. Not with decodeRouter 'fused'.
   */
  decodeRmsNorm?: boolean;
  /** Add the MoE output into `out` in place (the residual stream; default), or write residual + MoE to out. */
  inPlace?: boolean;
  /** Prefill GEMM path and tiles (default: tensor cores where available, else tiled f32). */
  gemmPath?: GemmPath;
  gemmTile?: MatmulGemmVariant['tile'];
}

/** Working buffers of a MoE block for up to maxTokens tokens; one set serves every layer of the same shape. */
export interface MoeScratch {
  label: string;
  maxTokens: number;
  dims: MoeDims;
  topkIds: GPUBuffer; // u32 (T, k)
  topkWeights: GPUBuffer; // f32 (T, k)
  logits: GPUBuffer; // f32 (T, E), router logits (prefill, decodeRouter 'matvec')
  gateUp: GPUBuffer; // f32 (T·k, 2I), prefill; the same buffer as expertOut
  act: GPUBuffer; // f32 (T·k, I)
  expertOut: GPUBuffer; // f32 (T·k, H), unfused decode and prefill
  routing: MoeRouting; // prefill
}

export interface MoeDims {
  E: number;
  H: number;
  I: number;
  k: number;
  blockM: number; // the prefill GEMMs' row tile
}

export type MoePath = 'decode' | 'prefill';

export interface MoeBlockBinding {
  readonly label: string;
  readonly maxTokens: number;
  /** Which path T tokens take. */
  pathFor(tokens: number): MoePath;
  /**
   * The whole MoE for T tokens as one Dispatch (its dispatches recorded in order into the caller's pass). Bindings
   * for each T are made on first use and kept. The decode path writes nothing to the queue, so several token
   * counts may share one submission; the prefill path sets the logits GEMM's rows and MoeAlign's pair count here
   * (uniform writes), so one prefill token count per block per submission.
   */
  forTokens(tokens: number): Dispatch & { count: number };
}

const DEFAULT_MAX_DECODE_TOKENS = 8;
const MAX_CACHED_TOKEN_COUNTS = 64;

function fail(label: string, msg: string): never {
  throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${msg}`);
}

/** Checks the three weights against each other; returns (E, H, I). */
function checkWeights(label: string, w: MoeBlockWeights): { E: number; H: number; I: number } {
  const { router, gateUp, down } = w;
  const E = gateUp.numExperts;
  const H = gateUp.K;
  const I = gateUp.N / 2;
  if (!Number.isInteger(I) || I < 16)
    fail(label, `gate_up ${gateUp.label} has N ${gateUp.N}; expected 2·I (gate rows, then up rows) with I ≥ 16`);
  if (router.numExperts !== 1 || router.N !== E || router.K !== H)
    fail(
      label,
      `router ${router.label} is [${router.numExperts}, ${router.N}, ${router.K}], expected [1, ${E}, ${H}] for gate_up [${E}, ${2 * I}, ${H}]`,
    );
  if (router.format !== 'bf16' && router.format !== 'f32')
    fail(label, `router ${router.label} is ${router.format}; the router kernel reads bf16 or f32`);
  if (down.numExperts !== E || down.N !== H || down.K !== I)
    fail(
      label,
      `down ${down.label} is [${down.numExperts}, ${down.N}, ${down.K}], expected [${E}, ${H}, ${I}] for gate_up [${E}, ${2 * I}, ${H}]`,
    );
  return { E, H, I };
}

export class MoeBlock {
  readonly dims: MoeDims;
  readonly maxDecodeTokens: number;
  /** Decode runs the fused down + combine kernel. */
  readonly fusedDown: boolean;
  /** The prefill GEMMs' path ('tiled' rounds nothing; the tensor-core paths take f16 operands). */
  readonly gemmPath: GemmPath;

  private constructor(
    private readonly gpu: Gpu,
    readonly label: string,
    private readonly weights: MoeBlockWeights,
    private readonly k: {
      router: MoeRouter; // from logits
      routerFused: MoeRouter | null; // from x (decodeRouter 'fused')
      logitsMv: Matvec | null; // decodeRouter 'matvec'
      logitsGemm: MatmulGemm;
      gateUpMv: Matvec;
      align: MoeAlign;
      gateUpGemm: MatmulGemm;
      downGemm: MatmulGemm;
      silu: SiluMul;
      combine: MoeCombine;
      down: { fused: MoeDownCombine } | { matvec: Matvec };
    },
    dims: MoeDims,
    readonly inPlace: boolean,
    maxDecodeTokens: number,
    private readonly tokenRows: GPUBuffer,
    private readonly pairRows: GPUBuffer,
    /** Decode normalizes x itself (decodeRmsNorm): bind needs `norm`. */
    readonly decodeRmsNorm = false,
  ) {
    this.dims = dims;
    this.maxDecodeTokens = maxDecodeTokens;
    this.gemmPath = k.gateUpGemm.path;
    this.fusedDown = 'fused' in k.down;
  }

  static async create(gpu: Gpu, w: MoeBlockWeights, o: MoeBlockOptions, label = 'moe'): Promise<MoeBlock> {
    const { E, H, I } = checkWeights(label, w);
    const k = o.topK;
    if (!(Number.isInteger(k) && k >= 1 && k <= E)) fail(label, `top-k ${k} must be 1..E (${E})`);
    const maxDecodeTokens = o.maxDecodeTokens ?? DEFAULT_MAX_DECODE_TOKENS;
    if (!(Number.isInteger(maxDecodeTokens) && maxDecodeTokens >= 0))
      fail(label, `maxDecodeTokens ${maxDecodeTokens} must be an integer ≥ 0`);
    const inPlace = o.inPlace ?? true;
    const unfusable = moeDownUnsupported(gpu, w.down);
    if (o.fusedDown && unfusable) fail(label, `fusedDown: down ${w.down.label}: ${unfusable}`);
    const act = 'f32';
    const gemm = (weight: GpuWeight) =>
      MatmulGemm.create(gpu, {
        format: weight.format,
        grouped: true,
        preScale: weight.preScale !== undefined,
        path: o.gemmPath,
        tile: o.gemmTile,
      });
    const down = async () =>
      o.fusedDown !== false && !unfusable
        ? { fused: await MoeDownCombine.create(gpu, { format: w.down.format, inPlace }) }
        : {
            matvec: await Matvec.create(
              gpu,
              matvecVariantFor(gpu, w.down, { act, out: act, grouped: true, numTiles: k }),
            ),
          };
    const routerFormat = w.router.format as 'bf16' | 'f32';
    const fusedRouter = o.decodeRouter === 'fused';
    const rmsNorm = o.decodeRmsNorm ?? false;
    if (rmsNorm && fusedRouter) fail(label, `decodeRmsNorm needs decodeRouter 'matvec' (the fused router reads x)`);
    const [
      router,
      routerFused,
      logitsMv,
      logitsGemm,
      gateUpMv,
      align,
      gateUpGemm,
      downGemm,
      silu,
      combine,
      downKernel,
    ] = await Promise.all([
      MoeRouter.create(gpu, { input: 'logits', normTopk: o.normTopk }),
      fusedRouter ? MoeRouter.create(gpu, { input: 'x', weightFormat: routerFormat, normTopk: o.normTopk }) : null,
      fusedRouter ? null : Matvec.create(gpu, matvecVariantFor(gpu, w.router, { act, out: act, rmsNorm })),
      // f32 FMA, never f16 operands: rounding x would move logits and could flip near-tie expert choices
      MatmulGemm.create(gpu, { format: routerFormat, path: 'tiled' }),
      // work split tuned for T = 1 (k entries): the case decode speed is judged by
      Matvec.create(
        gpu,
        matvecVariantFor(gpu, w.gateUp, {
          act,
          out: act,
          grouped: true,
          epilogue: 'silu_mul',
          numTiles: k,
          rmsNorm,
        }),
      ),
      MoeAlign.create(gpu, { maxExperts: Math.max(512, E) }),
      gemm(w.gateUp),
      gemm(w.down),
      SiluMul.create(gpu, { src: 'f32', dst: 'f32' }),
      MoeCombine.create(gpu, { src: 'f32', inPlace }),
      down(),
    ]);
    if (gateUpGemm.tileM !== downGemm.tileM)
      fail(label, `gate_up and down GEMMs tile ${gateUpGemm.tileM} and ${downGemm.tileM} rows; one routing needs one`);
    const rows = Math.max(1, maxDecodeTokens * k);
    const tokenRows = createBufferFrom(
      gpu,
      `${label}/token_rows`,
      Uint32Array.from({ length: rows }, (_, p) => Math.floor(p / k)),
    );
    const pairRows = createBufferFrom(
      gpu,
      `${label}/pair_rows`,
      Uint32Array.from({ length: rows }, (_, p) => p),
    );
    const dims = { E, H, I, k, blockM: gateUpGemm.tileM };
    const kernels = {
      router,
      routerFused,
      logitsMv,
      logitsGemm,
      gateUpMv,
      align,
      gateUpGemm,
      downGemm,
      silu,
      combine,
      down: downKernel,
    };
    return new MoeBlock(gpu, label, w, kernels, dims, inPlace, maxDecodeTokens, tokenRows, pairRows, rmsNorm);
  }

  /** Scratch for up to maxTokens tokens, for this block and every other block of the same dims. */
  createScratch(maxTokens: number, label = `${this.label}/scratch`): MoeScratch {
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) fail(label, `maxTokens ${maxTokens} must be an integer ≥ 1`);
    const { E, H, I, k, blockM } = this.dims;
    const pairs = maxTokens * k;
    // gate_up output (dead once silu·mul has read it) and expert outputs (written after) share one buffer
    const shared = createBuffer(this.gpu, `${label}/gate_up+expert_out`, pairs * Math.max(2 * I, H) * 4);
    return {
      label,
      maxTokens,
      dims: { ...this.dims },
      topkIds: createBuffer(this.gpu, `${label}/topk_ids`, pairs * 4),
      topkWeights: createBuffer(this.gpu, `${label}/topk_weights`, pairs * 4),
      logits: createBuffer(this.gpu, `${label}/logits`, maxTokens * E * 4),
      gateUp: shared,
      act: createBuffer(this.gpu, `${label}/act`, pairs * I * 4),
      expertOut: shared,
      routing: createMoeRouting(this.gpu, `${label}/routing`, {
        maxPairs: pairs,
        numExperts: E,
        blockM,
        gridN: [this.k.gateUpGemm.gridN(2 * I), this.k.downGemm.gridN(H)],
      }),
    };
  }

  /**
   * Binds once for up to scratch.maxTokens tokens; see MoeBlockBinding.forTokens. With decodeRmsNorm, `norm` gives
   * the decode path its un-normed rows (T, H) f32, the norm weight f32 [H] and eps; bufs.x serves prefill only.
   */
  bind(
    bufs: {
      x: BufferSlice;
      out: BufferSlice;
      residual?: BufferSlice;
      scratch: MoeScratch;
      norm?: { x: BufferSlice; weight: BufferSlice; eps: number };
    },
    label = this.label,
  ): MoeBlockBinding {
    const { scratch: s } = bufs;
    const { E, H, I, k, blockM } = this.dims;
    const d = s.dims;
    if (d.E !== E || d.H !== H || d.I !== I || d.k !== k || d.blockM !== blockM)
      fail(
        label,
        `scratch ${s.label} was made for (E ${d.E}, H ${d.H}, I ${d.I}, k ${d.k}, blockM ${d.blockM}), this block is ` +
          `(E ${E}, H ${H}, I ${I}, k ${k}, blockM ${blockM})`,
      );
    if (this.inPlace === (bufs.residual !== undefined))
      fail(
        label,
        this.inPlace
          ? 'this block adds in place into out (inPlace); got a separate residual'
          : 'this block was made with inPlace false and needs a residual buffer',
      );
    if (this.decodeRmsNorm !== (bufs.norm !== undefined))
      fail(
        label,
        this.decodeRmsNorm
          ? 'this block normalizes in decode (decodeRmsNorm) and needs norm (x, weight, eps)'
          : 'this block was made without decodeRmsNorm; got a norm',
      );
    const maxTokens = s.maxTokens;
    for (const [what, slice] of [
      ['x', bufs.x],
      ['out', bufs.out],
      ['residual', bufs.residual],
      ['norm.x', bufs.norm?.x],
    ] as const)
      if (slice && sliceBytes(slice) < maxTokens * H * 4)
        fail(
          label,
          `${what} has ${sliceBytes(slice)} bytes, expected at least ${maxTokens * H * 4} for ${maxTokens} tokens × H ${H} f32`,
        );
    const kn = this.k;
    const w = this.weights;
    // decode matvecs' x: the un-normed rows and the norm (decodeRmsNorm), else the normed rows
    const decodeX = bufs.norm?.x ?? bufs.x;
    const normWeight = bufs.norm?.weight;
    const eps = bufs.norm?.eps;
    const maxPairs = maxTokens * k;
    // Bound once: the prefill GEMMs (grouped ones indirect, sized by the routing; the logits GEMM via setRows) and
    // the alignment (pair count via setPairs).
    let prefill: { logits: GemmDispatch; align: MoeAlignDispatch; gateUp: Dispatch; down: Dispatch } | null = null;
    const prefillBound = () => {
      prefill ??= {
        logits: kn.logitsGemm.bind(
          { x: bufs.x, weight: w.router, y: s.logits },
          { M: maxTokens },
          `${label}/router_logits`,
        ),
        align: kn.align.bind(s.topkIds, s.routing, maxPairs, `${label}/moe_align`),
        gateUp: kn.gateUpGemm.bindGrouped(
          { x: bufs.x, weight: w.gateUp, y: s.gateUp, routing: s.routing },
          { xRowDiv: k, consumer: 0 },
          `${label}/gate_up`,
        ),
        down: kn.downGemm.bindGrouped(
          { x: s.act, weight: w.down, y: s.expertOut, routing: s.routing },
          { xRowDiv: 1, consumer: 1 },
          `${label}/down`,
        ),
      };
      return prefill;
    };
    const combine = (T: number): Dispatch =>
      kn.combine.bind(
        { weights: s.topkWeights, expertOut: s.expertOut, out: bufs.out, residual: bufs.residual },
        { tokens: T, hidden: H, topK: k },
        `${label}/combine`,
      );
    const routerFromLogits = (T: number) =>
      kn.router.bind(
        { logits: s.logits, topkIds: s.topkIds, topkWeights: s.topkWeights },
        { tokens: T, topK: k, numExperts: E },
        `${label}/router`,
      );
    // decode: the router's dispatches for T tokens
    const router = (T: number): Dispatch[] =>
      kn.routerFused
        ? [
            kn.routerFused.bind(
              { x: bufs.x, weight: w.router, topkIds: s.topkIds, topkWeights: s.topkWeights },
              { tokens: T, topK: k },
              `${label}/router`,
            ),
          ]
        : [
            kn.logitsMv!.bind(
              { x: decodeX, weight: w.router, out: s.logits, normWeight },
              { M: T, eps },
              `${label}/router_logits`,
            ),
            routerFromLogits(T),
          ];
    const pathFor = (T: number): MoePath => (T <= Math.min(this.maxDecodeTokens, maxTokens) ? 'decode' : 'prefill');

    type Built = { list: Dispatch[]; prefill?: { logits: GemmDispatch; align: MoeAlignDispatch } };
    const build = (T: number): Built => {
      if (pathFor(T) === 'decode') {
        const M = T * k;
        const gateUp = kn.gateUpMv.bind(
          { x: decodeX, weight: w.gateUp, out: s.act, tileExperts: s.topkIds, entryRows: this.tokenRows, normWeight },
          { M, numXRows: T, eps },
          `${label}/gate_up`,
        );
        if ('fused' in kn.down) {
          const down = kn.down.fused.bind(
            {
              act: s.act,
              weight: w.down,
              topkIds: s.topkIds,
              topkWeights: s.topkWeights,
              out: bufs.out,
              residual: bufs.residual,
            },
            { tokens: T, topK: k },
            `${label}/down_combine`,
          );
          return { list: [...router(T), gateUp, down] };
        }
        const down = kn.down.matvec.bind(
          { x: s.act, weight: w.down, out: s.expertOut, tileExperts: s.topkIds, entryRows: this.pairRows },
          { M, numXRows: M },
          `${label}/down`,
        );
        return { list: [...router(T), gateUp, down, combine(T)] };
      }
      const p = prefillBound();
      const silu = kn.silu.bind({ gateUp: s.gateUp, out: s.act }, { rows: T * k, intermediate: I }, `${label}/silu`);
      return {
        list: [p.logits, routerFromLogits(T), p.align, p.gateUp, silu, p.down, combine(T)],
        prefill: p,
      };
    };

    const cache = new Map<number, Built>();
    return {
      label,
      maxTokens,
      pathFor,
      forTokens(T) {
        if (!(Number.isInteger(T) && T >= 1 && T <= maxTokens))
          fail(label, `${T} tokens, the scratch holds 1..${maxTokens}`);
        let entry = cache.get(T);
        if (!entry) {
          entry = build(T);
          if (cache.size >= MAX_CACHED_TOKEN_COUNTS) cache.delete(cache.keys().next().value!);
          cache.set(T, entry);
        }
        entry.prefill?.logits.setRows(T);
        entry.prefill?.align.setPairs(T * k);
        const list = entry.list;
        return {
          label: `${label}[T=${T}]`,
          count: list.length,
          encode(pass) {
            for (const d of list) d.encode(pass);
          },
        };
      },
    };
  }
}

// matmul_gemm wrapper: the prefill GEMM y = x · Wᵀ over a GpuWeight, dense (bind) or grouped by expert over a
// MoeRouting (bindGrouped). Picks the path — tensor cores (matmul_gemm_subgroup_matrix.wgsl) where the adapter has
// f16 subgroup matrices, else the tiled f32 kernel (matmul_gemm_tiled.wgsl) — builds the variant from flags, checks
// shapes, binds once.
//   dense:   x: (M, K) x_t · W: (N, K) · y: (M, N) y_t
//   grouped: x: (ceil(maxPairs / xRowDiv), K) · W: (E, N, K) · y: (maxPairs, N); pair p reads x row p / xRowDiv
import { KernelError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { createUniform } from './gpu/buffers.js';
import { type Capabilities, f16MatrixConfig } from './gpu/capabilities.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, bindingResource, type Dispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { checkGemmWeight, gemmWeightEntries } from './matmul_gemm_weight.js';
import type { MoeRouting } from './moe_align.js';
import type { GpuWeight, WeightFormat } from './weight_format.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

const log = logger('kernels');

/** subgroup_matrix_emulated: the tensor-core kernel with its matrix ops as plain loops (a CI check, not a fast path). */
export type GemmPath = 'tiled' | 'subgroup_matrix' | 'subgroup_matrix_emulated';

export interface MatmulGemmVariant {
  format: WeightFormat;
  x?: FloatType; // activations (default f32)
  y?: FloatType; // output (default f32)
  grouped?: boolean; // MoE: weight [E, N, K], rows from a MoeRouting
  preScale?: boolean; // the weight has a preScale [E, K] multiplying x
  routeWeights?: boolean; // grouped: y row p is multiplied by routeWeights[p]
  path?: GemmPath; // default: subgroup_matrix where available, else tiled
  tile?: { m?: number; n?: number; k?: number }; // tiled: TILE_M, TILE_N (multiples of 4), TILE_K (multiple of 8)
  subgroupTile?: { sgRows?: number; sgCols?: number; k?: number }; // subgroup_matrix: tile 32·sgRows × 64·sgCols
}

/** Why the tensor-core path cannot run here, or null where it can. */
export function subgroupMatrixUnavailable(caps: Capabilities): string | null {
  if (!caps.hasF16) return 'no shader-f16';
  if (!caps.hasSubgroups || caps.subgroupMaxSize < 1) return 'no subgroups';
  if (!f16MatrixConfig(caps)) {
    const have = caps.subgroupMatrix.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`);
    return `no f16->f32 16x16x16 subgroup-matrix config (adapter offers: ${have.join(', ') || 'none'})`;
  }
  return null;
}

export function gemmName(v: MatmulGemmVariant, path: GemmPath): string {
  const parts = ['matmul_gemm', v.grouped ? 'grouped' : '', v.format, v.x ?? 'f32', v.y ?? 'f32', path];
  if (v.preScale) parts.push('prescale');
  if (v.routeWeights) parts.push('routed');
  return parts.filter(Boolean).join('_');
}

/** A bound dense GEMM; `setRows` changes M for the next submission (one small uniform write, new grid). */
export interface GemmDispatch extends Dispatch {
  setRows(M: number): void;
}

interface Built {
  pipeline: GPUComputePipeline;
  path: GemmPath;
  tileM: number;
  tileN: number;
}

let loggedTiledFallback = false;

async function build(gpu: Gpu, v: MatmulGemmVariant): Promise<Built> {
  const caps = gpu.caps;
  const unavailable = subgroupMatrixUnavailable(caps);
  const path: GemmPath = v.path ?? (unavailable ? 'tiled' : 'subgroup_matrix');
  if (path === 'subgroup_matrix' && unavailable)
    throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${gemmName(v, path)}: tensor cores unavailable: ${unavailable}`, {
      hint: "use path 'tiled' (or leave path unset to choose automatically)",
    });
  if (!v.path && unavailable && !loggedTiledFallback) {
    log.info(`matmul_gemm: tiled f32 path (subgroup matrices unavailable: ${unavailable})`);
    loggedTiledFallback = true;
  }
  if (v.routeWeights && !v.grouped)
    throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${gemmName(v, path)}: routeWeights needs grouped`);
  const matrix = path !== 'tiled';
  const f16 = matrix || v.x === 'f16' || v.y === 'f16';
  const aliases = { x_t: v.x ?? 'f32', y_t: v.y ?? 'f32' };
  const real = path === 'subgroup_matrix';
  const enables = wgslHeader(caps, { f16, subgroups: real }, {});
  const extra = real
    ? ['enable chromium_experimental_subgroup_matrix;', 'diagnostic(off, chromium.subgroup_matrix_uniformity);']
    : [];
  const aliasLines = Object.entries(aliases).map(([name, type]) => `alias ${name} = ${type};`);
  const header = [enables, ...extra, ...aliasLines].filter(Boolean).join('\n');
  const flags = {
    W_F32: v.format === 'f32',
    W_BF16: v.format === 'bf16',
    W_NVFP4: v.format === 'nvfp4',
    W_FP8: v.format === 'fp8',
    PRE_SCALE: Boolean(v.preScale),
    GROUPED: Boolean(v.grouped),
    ROUTE_WEIGHT: Boolean(v.routeWeights),
    SGM_EMULATED: path === 'subgroup_matrix_emulated',
  };
  const snippets = {
    dequant: loadWgsl(new URL('./dequant.wgsl', import.meta.url)),
    gemm_common: loadWgsl(new URL('./matmul_gemm_common.wgsl', import.meta.url)),
  };
  const file = matrix ? 'matmul_gemm_subgroup_matrix' : 'matmul_gemm_tiled';
  const body = composeWgsl(loadWgsl(new URL(`./${file}.wgsl`, import.meta.url)), flags, snippets, file);
  const label = gemmName(v, path);
  let constants: Record<string, number>;
  let tileM: number;
  let tileN: number;
  let wgSize: number;
  let wgBytes: number;
  if (matrix) {
    const { sgRows = 2, sgCols = 2, k = 32 } = v.subgroupTile ?? {};
    if (!(sgRows >= 1 && sgCols >= 1 && k >= 16 && k % 16 === 0))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${label}: subgroupTile ${JSON.stringify(v.subgroupTile)}`);
    const sgSize = real ? caps.subgroupMaxSize : 4; // emulation: every invocation does the whole matrix, keep few
    [tileM, tileN, wgSize] = [32 * sgRows, 64 * sgCols, sgRows * sgCols * sgSize];
    wgBytes = (tileM + tileN) * (k + 8) * 2 + sgRows * sgCols * 1024 + tileM * 4;
    constants = { SG_ROWS: sgRows, SG_COLS: sgCols, SUBGROUP_SIZE: sgSize, TILE_K: k };
  } else {
    const { m = 64, n = 64, k = 16 } = v.tile ?? {};
    if (!(m >= 4 && m % 4 === 0 && n >= 4 && n % 4 === 0 && k >= 8 && k % 8 === 0))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${label}: tile ${JSON.stringify(v.tile)}`);
    [tileM, tileN, wgSize] = [m, n, (m / 4) * (n / 4)];
    wgBytes = k * (m + n) * 4 + m * 4;
    constants = { TILE_M: m, TILE_N: n, TILE_K: k };
  }
  if (wgSize > caps.maxComputeInvocationsPerWorkgroup || wgBytes > caps.maxComputeWorkgroupStorageSize)
    throw new KernelError(
      'DAWN_ERR_KERNEL_VARIANT',
      `${label}: ${wgSize} invocations and ${wgBytes} bytes of workgroup memory, the device allows ` +
        `${caps.maxComputeInvocationsPerWorkgroup} and ${caps.maxComputeWorkgroupStorageSize}`,
    );
  const pipeline = await gpu.pipelines.get({ label, code: `${header}\n${body}`, constants });
  return { pipeline, path, tileM, tileN };
}

export class MatmulGemm {
  readonly name: string;
  readonly path: GemmPath;
  /** Rows per workgroup tile: the blockM a MoeRouting for bindGrouped must use. */
  readonly tileM: number;
  readonly tileN: number;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly variant: MatmulGemmVariant,
    built: Built,
  ) {
    this.path = built.path;
    this.tileM = built.tileM;
    this.tileN = built.tileN;
    this.name = gemmName(variant, built.path);
  }

  static async create(gpu: Gpu, variant: MatmulGemmVariant): Promise<MatmulGemm> {
    const built = await build(gpu, variant);
    return new MatmulGemm(gpu, built.pipeline, variant, built);
  }

  /** Workgroups along N for an output of N columns (the MoeRouting gridN entry of this GEMM). */
  gridN(N: number): number {
    return Math.ceil(N / this.tileN);
  }

  /** Dense y = x · Wᵀ over M rows; bind once, `setRows` per step. */
  bind(bufs: { x: BufferSlice; weight: GpuWeight; y: BufferSlice }, shape: { M: number }, label = this.name) {
    const v = this.variant;
    if (v.grouped) throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${label}: a grouped GEMM binds with bindGrouped`);
    const w = bufs.weight;
    const wp = checkGemmWeight(label, w, this.expect(), this.gpu.caps);
    const checkRows = (M: number) => {
      if (!(Number.isInteger(M) && M >= 1)) this.fail(label, `M ${M} must be an integer ≥ 1`);
      this.need(label, 'x', bufs.x, M * w.K * bytesPerElement[v.x ?? 'f32']);
      this.need(label, 'y', bufs.y, M * w.N * bytesPerElement[v.y ?? 'f32']);
      const gx = Math.ceil(M / this.tileM);
      if (gx > this.gpu.caps.maxComputeWorkgroupsPerDimension)
        this.fail(
          label,
          `M ${M} needs ${gx} row tiles, the device dispatches at most ${this.gpu.caps.maxComputeWorkgroupsPerDimension}`,
        );
      return gx;
    };
    let gx = checkRows(shape.M);
    const gy = this.gridN(w.N);
    const params = new Uint32Array([shape.M, w.N, w.K, 1, wp.rowsPerGroup, wp.numGroups, wp.scaleBn, wp.scaleBk]);
    const uniform = createUniform(this.gpu, `${label}/params`, this.params(params, wp.scaleGn, wp.scaleGk, 0, 0));
    const bindGroup = this.bindGroup(label, [[0, uniform], [1, bufs.x], ...gemmWeightEntries(w), [6, bufs.y]]);
    const pipeline = this.pipeline;
    const queue = this.gpu.queue;
    const d: GemmDispatch = {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(gx, gy);
      },
      setRows(M) {
        gx = checkRows(M);
        queue.writeBuffer(uniform, 0, new Uint32Array([M]));
      },
    };
    return d;
  }

  /**
   * Grouped (MoE) GEMM over the pairs a MoeAlign wrote into `routing`: y[p] = (routeWeights[p]·) x[p / xRowDiv] ·
   * W[e]ᵀ for every routed pair p of expert e. Dispatched indirect from routing.dispatchArgs[consumer]; depends on no
   * per-step value, so it is bound once.
   */
  bindGrouped(
    bufs: { x: BufferSlice; weight: GpuWeight; y: BufferSlice; routing: MoeRouting; routeWeights?: BufferSlice },
    shape: { xRowDiv: number; consumer: number },
    label = this.name,
  ): Dispatch {
    const v = this.variant;
    if (!v.grouped) throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `${label}: a dense GEMM binds with bind`);
    const { weight: w, routing: r } = bufs;
    const { xRowDiv, consumer } = shape;
    const wp = checkGemmWeight(label, w, this.expect(), this.gpu.caps);
    if (r.blockM !== this.tileM)
      this.fail(label, `routing ${r.label} has blockM ${r.blockM}, this GEMM tiles ${this.tileM} rows`);
    if (r.numExperts !== w.numExperts)
      this.fail(label, `routing ${r.label} has ${r.numExperts} experts, weight ${w.label} ${w.numExperts}`);
    if (!(Number.isInteger(consumer) && consumer >= 0 && consumer < r.gridN.length))
      this.fail(label, `consumer ${consumer}: routing ${r.label} has ${r.gridN.length} consumers`);
    if (r.gridN[consumer] !== this.gridN(w.N))
      this.fail(
        label,
        `routing ${r.label} consumer ${consumer} dispatches ${r.gridN[consumer]} workgroups along N, N ${w.N} needs ${this.gridN(w.N)}`,
      );
    if (!(Number.isInteger(xRowDiv) && xRowDiv >= 1)) this.fail(label, `xRowDiv ${xRowDiv} must be an integer ≥ 1`);
    this.need(label, 'x', bufs.x, Math.ceil(r.maxPairs / xRowDiv) * w.K * bytesPerElement[v.x ?? 'f32']);
    this.need(label, 'y', bufs.y, r.maxPairs * w.N * bytesPerElement[v.y ?? 'f32']);
    const entries: Array<[number, BufferSlice]> = [[1, bufs.x], ...gemmWeightEntries(w), [6, bufs.y], [7, r.routing]];
    if (v.routeWeights) {
      this.need(label, 'routeWeights', bufs.routeWeights, r.maxPairs * 4);
      entries.push([8, bufs.routeWeights!]);
    } else if (bufs.routeWeights) this.fail(label, 'routeWeights given, this kernel was built without ROUTE_WEIGHT');
    const params = new Uint32Array([0, w.N, w.K, xRowDiv, wp.rowsPerGroup, wp.numGroups, wp.scaleBn, wp.scaleBk]);
    const uniform = createUniform(
      this.gpu,
      `${label}/params`,
      this.params(params, wp.scaleGn, wp.scaleGk, r.maxPaddedRows, r.maxTiles),
    );
    const bindGroup = this.bindGroup(label, [[0, uniform], ...entries]);
    const pipeline = this.pipeline;
    const args = r.dispatchArgs;
    return {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroupsIndirect(args, consumer * 12);
      },
    };
  }

  private expect() {
    const v = this.variant;
    return { format: v.format, grouped: Boolean(v.grouped), preScale: Boolean(v.preScale) };
  }

  private params(head: Uint32Array, gn: number, gk: number, tileExpertBase: number, maxTiles: number): Uint32Array {
    const p = new Uint32Array(12);
    p.set(head);
    p.set([gn, gk, tileExpertBase, maxTiles], 8);
    return p;
  }

  private bindGroup(label: string, entries: Array<[number, BufferSlice]>): GPUBindGroup {
    return this.gpu.device.createBindGroup({
      label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: entries.map(([binding, s]) => ({ binding, resource: bindingResource(s) })),
    });
  }

  private need(label: string, what: string, slice: BufferSlice | undefined, bytes: number): void {
    if (!slice) this.fail(label, `${what} is missing`);
    if (sliceBytes(slice) < bytes)
      this.fail(label, `${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes}`);
  }

  private fail(label: string, message: string): never {
    throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${message}`);
  }
}

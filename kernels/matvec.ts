// matvec wrapper: the decode-side (small-M) dequantizing matmul y = x · Wᵀ and its grouped (MoE) form. Checks
// shapes against the GpuWeight, picks the variant (format, types, reduction, decode, epilogue), splits weights
// larger than one binding into several dispatches, and binds once. See matvec.wgsl for the math.
//   dense:   x (M, xStride) act · W [1, N, K] · out (M, outStride) out;  out[m, n] = Σ_k x[m, k] W[n, k]
//   grouped: x (rows, xStride) · W [E, N, K] · out (M entries, outStride); entries are cut into tiles of mTile,
//            tile t uses expert tileExperts[t], entry p reads x row entryRows[p] (NO_ROW = padding, not written):
//            out[p, n] = Σ_k x[entryRows[p], k] W[tileExperts[p / mTile], n, k]
// Epilogues: 'residual' out = y + residual · 'accumulate' out += y (in place, e.g. the residual stream) ·
//   'silu_mul' out[p, i] = silu(y[p, i]) · y[p, i + N/2] (fused gate_up, gate rows first), out has N/2 columns.
// Prologue rmsNorm: x rows are RMSNorm'ed first (x · rsqrt(mean_k x² + eps) · normWeight, as kernels/rms_norm.ts),
//   so a decode step needs no separate norm dispatch before its projection.
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, bindingResource, type Dispatch, grid, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { planWeightChunks } from './matvec_split.js';
import { defaultMatvecTuning, type MatvecTuning } from './matvec_tuning.js';
import type { GpuWeight, WeightFormat } from './weight_format.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

export type MatvecEpilogue = 'none' | 'residual' | 'accumulate' | 'silu_mul';

/** entryRows value for a padding entry: computes nothing, writes nothing. */
export const NO_ROW = 0xffffffff;

export const MAX_M_TILE = 16;

export interface MatvecVariant {
  format: WeightFormat;
  act: FloatType;
  out: FloatType;
  grouped?: boolean;
  epilogue?: MatvecEpilogue;
  /** The weight carries preScale (x · preScale[e] before the matmul). */
  preScale?: boolean;
  /** FP8 only: one scale per row (scaleBlock[1] ≥ K: per-tensor or per-channel), applied after the reduction. */
  fp8RowScale?: boolean;
  /** x rows (entries) sharing each weight read, 1..16; default 1. Dense M above mTile runs ceil(M/mTile) tiles. */
  mTile?: number;
  /** subgroupAdd reduction; default: when the device has subgroups. */
  subgroups?: boolean;
  /** f16 bit-pattern decode of E2M1/E4M3; default: when the device has shader-f16. */
  f16Decode?: boolean;
  /** Work split; default from defaultMatvecTuning (needs N, K: use matvecVariantFor). */
  tuning?: MatvecTuning;
  /** RMSNorm prologue on x rows (buffers.normWeight f32 [K], shape.eps). */
  rmsNorm?: boolean;
}

export interface MatvecBuffers {
  x: BufferSlice;
  weight: GpuWeight;
  out: BufferSlice;
  residual?: BufferSlice;
  tileExperts?: BufferSlice;
  entryRows?: BufferSlice;
  /** rmsNorm: the norm weight, f32 [K]. */
  normWeight?: BufferSlice;
}

export interface MatvecShape {
  /** Rows of x (dense) or entries (grouped). */
  M: number;
  /** Elements between rows of x (default K; a multiple of 4). */
  xStride?: number;
  /** Elements between rows of out (default N, or N/2 with silu_mul). */
  outStride?: number;
  /** Grouped: rows x holds, for the size check (default 1). */
  numXRows?: number;
  /** Split w_data into bindings of at most this many bytes (default: the device's storage-binding limit). */
  maxBindingBytes?: number;
  /** rmsNorm: the norm's epsilon. */
  eps?: number;
}

/** The variant that fits `weight` (format, fp8 row scale, preScale) with a default work split for its shape. */
export function matvecVariantFor(
  gpu: Gpu,
  weight: GpuWeight,
  o: Omit<MatvecVariant, 'format' | 'fp8RowScale' | 'preScale'> & { numTiles?: number },
): MatvecVariant {
  const mTile = o.mTile ?? 1;
  const subgroups = o.subgroups ?? gpu.caps.hasSubgroups;
  const tuning =
    o.tuning ??
    defaultMatvecTuning(
      gpu.caps,
      {
        format: weight.format,
        N: weight.N,
        K: weight.K,
        mTile,
        numTiles: o.numTiles,
        siluMul: o.epilogue === 'silu_mul',
      },
      subgroups,
    );
  return {
    ...o,
    format: weight.format,
    fp8RowScale: weight.format === 'fp8' && (weight.scaleBlock ?? [weight.N, weight.K])[1] >= weight.K,
    preScale: weight.preScale !== undefined,
    mTile,
    subgroups,
    tuning,
  };
}

export function matvecName(v: MatvecVariant, subgroups: boolean, f16Decode: boolean): string {
  const parts = ['matvec'];
  if (v.grouped) parts.push('grouped');
  parts.push(v.format, v.act, v.out);
  if (v.preScale) parts.push('prescale');
  if (v.fp8RowScale) parts.push('rowscale');
  if (v.rmsNorm) parts.push('rmsnorm');
  if (v.epilogue && v.epilogue !== 'none') parts.push(v.epilogue);
  if (f16Decode && (v.format === 'nvfp4' || v.format === 'fp8')) parts.push('f16dec');
  if (subgroups) parts.push('subgroup');
  return parts.join('_');
}

/** Bytes of one row of w_data and of one 16-k unit. */
export function unitBytes(format: WeightFormat): number {
  return { nvfp4: 8, fp8: 16, bf16: 32, f32: 64 }[format];
}

/** Host-side grouped entries: (x row, expert) pairs sorted into tiles of mTile sharing one expert (padding NO_ROW). */
export function groupEntries(
  xRows: ArrayLike<number>,
  experts: ArrayLike<number>,
  mTile: number,
): { tileExperts: Uint32Array; entryRows: Uint32Array; source: Int32Array } {
  const order = Array.from({ length: xRows.length }, (_, i) => i).sort((a, b) => experts[a] - experts[b] || a - b);
  const tileExperts: number[] = [];
  const entryRows: number[] = [];
  const source: number[] = [];
  for (let i = 0; i < order.length;) {
    const e = experts[order[i]];
    tileExperts.push(e);
    for (let j = 0; j < mTile; j++) {
      if (i < order.length && experts[order[i]] === e) {
        entryRows.push(xRows[order[i]]);
        source.push(order[i]);
        i++;
      } else {
        entryRows.push(NO_ROW);
        source.push(-1);
      }
    }
  }
  return {
    tileExperts: Uint32Array.from(tileExperts),
    entryRows: Uint32Array.from(entryRows),
    source: Int32Array.from(source),
  };
}

interface Resolved extends Required<Omit<MatvecVariant, 'tuning'>> {
  tuning: MatvecTuning;
}

export class Matvec {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: Resolved,
  ) {
    this.name = matvecName(variant, variant.subgroups, variant.f16Decode);
  }

  static async create(gpu: Gpu, variant: MatvecVariant): Promise<Matvec> {
    const caps = gpu.caps;
    const subgroups = variant.subgroups ?? caps.hasSubgroups;
    const quantized = variant.format === 'nvfp4' || variant.format === 'fp8';
    const f16Decode = quantized && (variant.f16Decode ?? caps.hasF16);
    const mTile = variant.mTile ?? 1;
    const epilogue = variant.epilogue ?? 'none';
    const tuning =
      variant.tuning ?? defaultMatvecTuning(caps, { format: variant.format, N: 4096, K: 2048, mTile }, subgroups);
    const v: Resolved = {
      format: variant.format,
      act: variant.act,
      out: variant.out,
      grouped: variant.grouped ?? false,
      epilogue,
      preScale: variant.preScale ?? false,
      fp8RowScale: variant.format === 'fp8' && (variant.fp8RowScale ?? false),
      mTile,
      subgroups,
      f16Decode,
      tuning,
      rmsNorm: variant.rmsNorm ?? false,
    };
    const name = matvecName(v, subgroups, f16Decode);
    const bad = (msg: string) => new KernelError('DAWN_ERR_KERNEL_VARIANT', `${name}: ${msg}`);
    const { rows, tpk, rowGroups } = tuning;
    if (!(Number.isInteger(mTile) && mTile >= 1 && mTile <= MAX_M_TILE))
      throw bad(`mTile ${mTile} must be 1..${MAX_M_TILE}`);
    if (!(Number.isInteger(rows) && rows >= 1 && rows <= 8)) throw bad(`rows ${rows} must be 1..8`);
    if (epilogue === 'silu_mul' && rows % 2) throw bad(`silu_mul pairs gate/up rows: rows ${rows} must be even`);
    if (tpk & (tpk - 1) || rowGroups < 1) throw bad(`tpk ${tpk} must be a power of two, rowGroups ${rowGroups} ≥ 1`);
    if (tpk * rowGroups > caps.maxComputeInvocationsPerWorkgroup)
      throw bad(`workgroup ${tpk}×${rowGroups} exceeds ${caps.maxComputeInvocationsPerWorkgroup} invocations`);
    if (subgroups && !caps.hasSubgroups) throw bad('subgroups requested but the device has none');
    if (subgroups && !(caps.subgroupMinSize >= 1 && caps.subgroupMaxSize <= tpk))
      throw bad(
        `subgroup reduction needs subgroups (${caps.subgroupMinSize}..${caps.subgroupMaxSize}) no wider than tpk ${tpk}`,
      );
    const partials = subgroups ? tpk / caps.subgroupMinSize : tpk;
    // per row group: rows·mTile output slots, plus mTile Σx² slots with rmsNorm
    const sharedBytes = partials * rowGroups * (rows + (v.rmsNorm ? 1 : 0)) * mTile * 4;
    if (sharedBytes > caps.maxComputeWorkgroupStorageSize)
      throw bad(`needs ${sharedBytes} B of workgroup memory, the device has ${caps.maxComputeWorkgroupStorageSize}`);
    if ((v.act === 'f16' || v.out === 'f16' || f16Decode) && !caps.hasF16)
      throw bad('needs shader-f16, which this adapter does not offer');

    const header = wgslHeader(
      caps,
      { f16: v.act === 'f16' || v.out === 'f16' || f16Decode, subgroups },
      {
        act_t: v.act,
        dst_t: v.out,
      },
    );
    const flags = {
      NVFP4: v.format === 'nvfp4',
      FP8: v.format === 'fp8',
      BF16: v.format === 'bf16',
      F32: v.format === 'f32',
      FP8_ROW_SCALE: v.fp8RowScale,
      SUBGROUPS: subgroups,
      F16_DECODE: f16Decode,
      GROUPED: v.grouped,
      PRESCALE: v.preScale,
      RESIDUAL: epilogue === 'residual',
      ACCUMULATE: epilogue === 'accumulate',
      SILU_MUL: epilogue === 'silu_mul',
      RMS_NORM: v.rmsNorm,
    };
    const snippets = {
      dequant: loadWgsl(new URL('./dequant.wgsl', import.meta.url)),
      dequant_f16: loadWgsl(new URL('./dequant_f16.wgsl', import.meta.url)),
    };
    const body = composeWgsl(loadWgsl(new URL('./matvec.wgsl', import.meta.url)), flags, snippets, 'matvec');
    const consts = `const ROWS: u32 = ${rows}u;\nconst M_TILE: u32 = ${mTile}u;`;
    const pipeline = await gpu.pipelines.get({
      label: `${name}_r${rows}t${tpk}g${rowGroups}m${mTile}`,
      code: `${header}\n${consts}\n${body}`,
      constants: { TPK: tpk, ROW_GROUPS: rowGroups, PARTIALS: partials },
    });
    return new Matvec(gpu, pipeline, v);
  }

  /** Output columns: N, or N/2 with silu_mul. */
  outColumns(weight: GpuWeight): number {
    return this.variant.epilogue === 'silu_mul' ? weight.N / 2 : weight.N;
  }

  /** Binds buffers once (one dispatch per weight chunk); the result can be recorded into every step's pass. */
  bind(bufs: MatvecBuffers, shape: MatvecShape, label = bufs.weight.label): Dispatch {
    const v = this.variant;
    const w = bufs.weight;
    const { N, K } = w;
    const E = w.numExperts;
    const M = shape.M;
    const nOut = this.outColumns(w);
    const xStride = shape.xStride ?? K;
    const outStride = shape.outStride ?? nOut;
    const fail = (msg: string) => new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label} (${this.name}): ${msg}`);
    const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
      if (!slice) throw fail(`${what} is required by this variant`);
      if (sliceBytes(slice) < bytes)
        throw fail(`${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} (M ${M}, N ${N}, K ${K})`);
    };
    if (w.format !== v.format) throw fail(`weight format ${w.format}, the kernel was built for ${v.format}`);
    if (!(N >= 1 && K >= 16 && K % 16 === 0)) throw fail(`N ${N} must be ≥ 1 and K ${K} a positive multiple of 16`);
    if (!(Number.isInteger(M) && M >= 1)) throw fail(`M ${M} must be an integer ≥ 1`);
    if (!v.grouped && E !== 1) throw fail(`${E} stacked experts need the grouped variant`);
    if (v.preScale !== (w.preScale !== undefined))
      throw fail(
        `weight ${w.preScale ? 'has' : 'has no'} preScale, the kernel was built ${v.preScale ? 'with' : 'without'}`,
      );
    if (v.epilogue === 'silu_mul' && N % 2) throw fail(`silu_mul needs an even N (gate rows, then up rows), got ${N}`);
    if (xStride % 4 || xStride < K) throw fail(`xStride ${xStride} must be a multiple of 4 and ≥ K`);
    if (outStride < nOut) throw fail(`outStride ${outStride} must be ≥ ${nOut}`);

    const numGlobal = w.numRowGroups ?? 1;
    const [bn, bk] = w.scaleBlock ?? [N, K];
    if (w.format === 'nvfp4') {
      if (N % numGlobal) throw fail(`numRowGroups ${numGlobal} does not divide N ${N}`);
      need('weight.blockScales', w.blockScales, (E * N * K) / 16);
      need('weight.globalScales', w.globalScales, E * numGlobal * 4);
    }
    if (w.format === 'fp8') {
      const rowScale = bk >= K;
      if (rowScale !== v.fp8RowScale)
        throw fail(
          `scale block [${bn}, ${bk}] ${rowScale ? 'is' : 'is not'} per row; build the variant with fp8RowScale ${rowScale}`,
        );
      if (!rowScale && bk % 16) throw fail(`fp8 scale block k ${bk} must be a multiple of 16 (or ≥ K)`);
      need('weight.scales', w.scales, E * Math.ceil(N / bn) * Math.ceil(K / bk) * 4);
    }
    if (w.preScale) need('weight.preScale', w.preScale, E * K * 4);
    const actBytes = bytesPerElement[v.act];
    const outBytes = bytesPerElement[v.out];
    const xRows = v.grouped ? (shape.numXRows ?? 1) : M;
    need('x', bufs.x, ((xRows - 1) * xStride + K) * actBytes);
    need('out', bufs.out, ((M - 1) * outStride + nOut) * outBytes);
    if (v.epilogue === 'residual') need('residual', bufs.residual, ((M - 1) * outStride + nOut) * outBytes);
    if (v.rmsNorm) {
      need('normWeight', bufs.normWeight, K * 4);
      if (!(shape.eps !== undefined && shape.eps >= 0)) throw fail(`rmsNorm needs eps ≥ 0, got ${shape.eps}`);
    }
    const mTile = v.mTile;
    const numTiles = Math.ceil(M / mTile);
    if (v.grouped) {
      need('tileExperts', bufs.tileExperts, numTiles * 4);
      need('entryRows', bufs.entryRows, M * 4);
    }

    const rowBytes = (K / 16) * unitBytes(w.format);
    need('weight.data', w.data, E * N * rowBytes);
    const maxBinding = Math.min(shape.maxBindingBytes ?? Infinity, this.gpu.caps.maxStorageBufferBindingSize);
    const chunks = planWeightChunks({
      label,
      numExperts: E,
      N,
      rowBytes,
      maxBindingBytes: maxBinding,
      offsetAlignment: this.gpu.caps.minStorageBufferOffsetAlignment,
    });
    if (chunks.length > 1 && v.epilogue === 'silu_mul' && E === 1)
      throw fail(`silu_mul cannot split a dense weight by rows (gate and up rows must share a binding)`);
    for (const [what, buf] of [
      ['weight.blockScales', w.blockScales],
      ['weight.globalScales', w.globalScales],
      ['weight.scales', w.scales],
      ['weight.preScale', w.preScale],
    ] as const) {
      if (buf && buf.size > this.gpu.caps.maxStorageBufferBindingSize)
        throw fail(`${what} (${buf.size} bytes) exceeds one storage binding; only weight.data is split`);
    }

    const { rows, rowGroups } = v.tuning;
    const outRowsPerWg = (v.epilogue === 'silu_mul' ? rows / 2 : rows) * rowGroups;
    const passes = chunks.map((c, ci) => {
      const chunkOutRows = v.epilogue === 'silu_mul' ? nOut : c.rowEnd - c.rowBegin;
      const rowBlocks = Math.ceil(chunkOutRows / outRowsPerWg);
      const [gx, gy] = grid(rowBlocks * numTiles, this.gpu.caps.maxComputeWorkgroupsPerDimension);
      const params = new Uint32Array(19);
      params.set([
        N,
        K,
        M,
        numTiles,
        xStride,
        outStride,
        c.rowBegin,
        c.rowEnd,
        c.expertBegin,
        c.expertEnd,
        rowBlocks,
        gx,
        N / numGlobal,
        numGlobal,
        bn,
        bk,
        Math.ceil(N / bn),
        Math.ceil(K / bk),
      ]);
      new Float32Array(params.buffer)[18] = shape.eps ?? 0;
      const chunkLabel = chunks.length > 1 ? `${label}[${ci}]` : label;
      const entries: [number, BufferSlice][] = [
        [0, createUniform(this.gpu, `${chunkLabel}/params`, params)],
        [1, bufs.x],
        [2, { buffer: w.data, offset: c.dataOffset, size: c.dataBytes }],
      ];
      if (w.format === 'nvfp4') entries.push([3, w.blockScales!], [4, w.globalScales!]);
      if (w.format === 'fp8') entries.push([3, w.scales!]);
      if (v.preScale) entries.push([5, w.preScale!]);
      if (v.grouped) entries.push([6, bufs.tileExperts!], [7, bufs.entryRows!]);
      if (v.epilogue === 'residual') entries.push([8, bufs.residual!]);
      entries.push([9, bufs.out]);
      if (v.rmsNorm) entries.push([10, bufs.normWeight!]);
      const bindGroup = this.gpu.device.createBindGroup({
        label: chunkLabel,
        layout: this.pipeline.getBindGroupLayout(0),
        entries: entries.map(([binding, s]) => ({ binding, resource: bindingResource(s) })),
      });
      return { bindGroup, gx, gy };
    });
    const pipeline = this.pipeline;
    return {
      label,
      encode(pass) {
        pass.setPipeline(pipeline);
        for (const p of passes) {
          pass.setBindGroup(0, p.bindGroup);
          pass.dispatchWorkgroups(p.gx, p.gy);
        }
      },
    };
  }
}

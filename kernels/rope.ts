// rope wrapper: q_norm / k_norm + interleaved M-RoPE in place on a fused qkv buffer, optionally writing the rotated
// k and the v heads into the paged KV cache in the same dispatch (see rope.wgsl). One dispatch per layer per step.
import { KernelError } from '../core/errors.js';
import type { TokenStep } from './attention_step.js';
import { createBufferFrom, createUniform } from './gpu/buffers.js';
import { composeWgsl } from './gpu/compose.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, makeBindGroup, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import {
  checkHeadDim,
  checkKvScales,
  type KvCache,
  type KvDtype,
  type KvScales,
  kvCacheBytes,
  kvDeclarations,
  kvFlags,
  kvSnippets,
  kvTag,
} from './kv_cache.js';

export interface RopeVariant {
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Also write k (after norm and rope) and v into a paged cache of this dtype. */
  cacheDtype?: KvDtype;
}

/** From the model config: rope_theta, mrope_section [s_t, s_h, s_w] (sum = head_dim / 2), rms_norm_eps. */
export interface RopeConfig {
  theta: number;
  mropeSection: readonly [number, number, number];
  eps: number;
}

export interface RopeBuffers {
  /** Token rows of [q heads | k heads | v heads] f32 (see RopeLayout); q and k are rewritten in place. */
  qkv: BufferSlice;
  /** u32 [3, T]: t, h, w rows, each `step.numTokens` long. */
  positions: BufferSlice;
  /** f32 [headDim] each. */
  qNorm: BufferSlice;
  kNorm: BufferSlice;
  /** With cacheDtype: u32 [T] slots (SLOT_SKIP = padding) and the layer's cache. */
  slotMapping?: BufferSlice;
  cache?: KvCache;
}

/** Element offsets inside a token row; defaults: q at 0, k at Hq·D, v at (Hq+Hkv)·D, stride (Hq+2·Hkv)·D. */
export interface RopeLayout extends Partial<KvScales> {
  tokenStride?: number;
  qOffset?: number;
  kOffset?: number;
  vOffset?: number;
}

export function ropeName(v: RopeVariant): string {
  return `rope_qk_norm_mrope_f32${v.cacheDtype ? `_write_${kvTag(v.cacheDtype)}` : ''}`;
}

/** inv_freq[j] = 1 / theta^(2j/D) rounded as HF computes it in f32 (f32 power, f32 reciprocal). */
export function ropeInvFreq(theta: number, headDim: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let j = 0; j < headDim / 2; j++) out[j] = 1 / Math.fround(Math.fround(theta) ** ((2 * j) / headDim));
  return out;
}

export function checkRopeConfig(label: string, headDim: number, c: RopeConfig): void {
  const [st, sh, sw] = c.mropeSection;
  const ok = [st, sh, sw].every((s) => Number.isInteger(s) && s >= 0) && st + sh + sw === headDim / 2;
  if (!ok)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: mrope_section [${c.mropeSection.join(', ')}] must be 3 non-negative integers summing to head_dim/2 = ${headDim / 2}`,
    );
  if (!(Number.isFinite(c.theta) && c.theta > 1))
    throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: rope theta ${c.theta} must be a finite number > 1`);
  if (!(Number.isFinite(c.eps) && c.eps >= 0))
    throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: eps ${c.eps} must be a finite number ≥ 0`);
}

export class QkNormRope {
  readonly name: string;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: RopeVariant,
  ) {
    this.name = ropeName(variant);
  }

  static async create(gpu: Gpu, variant: RopeVariant): Promise<QkNormRope> {
    const name = ropeName(variant);
    checkHeadDim(name, variant.headDim);
    for (const [what, n] of [
      ['numQHeads', variant.numQHeads],
      ['numKvHeads', variant.numKvHeads],
    ] as const) {
      if (!(Number.isInteger(n) && n >= 1))
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${name}: ${what} ${n} must be an integer ≥ 1`);
    }
    const D = variant.headDim;
    const dtype = variant.cacheDtype;
    const header = [
      ...(dtype ? [kvDeclarations(dtype, D)] : []),
      `const HEAD_DIM: u32 = ${D}u;`,
      `const HALF: u32 = ${D / 2}u;`,
    ].join('\n');
    const flags = { CACHE_WRITE: dtype !== undefined, ...kvFlags(dtype ?? 'f32') };
    const body = composeWgsl(loadWgsl(new URL('./rope.wgsl', import.meta.url)), flags, kvSnippets(), 'rope');
    const pipeline = await gpu.pipelines.get({ label: name, code: `${header}\n${body}` });
    return new QkNormRope(gpu, pipeline, variant);
  }

  /** Binds one layer's buffers once; each recording processes `step.numTokens` tokens. */
  bind(bufs: RopeBuffers, step: TokenStep, config: RopeConfig, layout: RopeLayout = {}, label = this.name): Dispatch {
    const { numQHeads: hq, numKvHeads: hkv, headDim: D, cacheDtype } = this.variant;
    checkRopeConfig(label, D, config);
    const qOffset = layout.qOffset ?? 0;
    const kOffset = layout.kOffset ?? hq * D;
    const vOffset = layout.vOffset ?? (hq + hkv) * D;
    const stride = layout.tokenStride ?? (hq + 2 * hkv) * D;
    const spans: Array<[string, number, number]> = [
      ['q', qOffset, hq * D],
      ['k', kOffset, hkv * D],
      ...(cacheDtype ? ([['v', vOffset, hkv * D]] as Array<[string, number, number]>) : []),
    ];
    for (const [what, off, len] of spans) {
      if (!(Number.isInteger(off) && off >= 0 && off + len <= stride))
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} heads at offset ${off} (+${len}) do not fit a token row of ${stride} elements`,
        );
    }
    const T = step.maxTokens;
    const need = (what: string, slice: BufferSlice | undefined, bytes: number) => {
      if (!slice) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${what} is required for ${this.name}`);
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${T} tokens (step maximum)`,
        );
      return slice;
    };
    need('qkv', bufs.qkv, ((T - 1) * stride + Math.max(...spans.map(([, o, l]) => o + l))) * 4);
    need('positions', bufs.positions, 3 * T * 4);
    need('qNorm', bufs.qNorm, D * 4);
    need('kNorm', bufs.kNorm, D * 4);
    let scales: KvScales = { kScale: 1, vScale: 1 };
    const extra: BufferSlice[] = [];
    if (cacheDtype) {
      const cache = bufs.cache;
      if (!cache) throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: cache is required for ${this.name}`);
      const s = cache.shape;
      if (s.dtype !== cacheDtype || s.numKvHeads !== hkv || s.headDim !== D)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: cache is (${s.dtype}, Hkv ${s.numKvHeads}, D ${s.headDim}), expected (${cacheDtype}, Hkv ${hkv}, D ${D})`,
        );
      scales = checkKvScales(label, cacheDtype, layout);
      extra.push(
        need('slotMapping', bufs.slotMapping, T * 4),
        need('cache.k', cache.k, kvCacheBytes(s)),
        need('cache.v', cache.v, kvCacheBytes(s)),
      );
    }
    const [, sh, sw] = config.mropeSection;
    const params = new ArrayBuffer(48);
    new Uint32Array(params, 0, 8).set([hq, hkv, stride, qOffset, kOffset, vOffset, 3 * sh, 3 * sw]);
    new Float32Array(params, 32, 3).set([config.eps, 1 / scales.kScale, 1 / scales.vScale]);
    new Uint32Array(params, 44, 1)[0] = D / 2;
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint8Array(params));
    const invFreq = createBufferFrom(this.gpu, `${label}/inv_freq`, ropeInvFreq(config.theta, D));
    const bindGroup = makeBindGroup(this.gpu, label, this.pipeline, [
      uniform,
      step.uniform,
      bufs.qkv,
      bufs.positions,
      bufs.qNorm,
      bufs.kNorm,
      invFreq,
      ...extra,
    ]);
    const pipeline = this.pipeline;
    const gx = hq + hkv + (cacheDtype ? hkv : 0);
    return {
      label,
      encode(pass) {
        if (step.numTokens === 0) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(gx, step.numTokens);
      },
    };
  }
}

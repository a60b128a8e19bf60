// kv_cache_write wrapper: new k, v (T, Hkv, D) f32 -> the paged cache at slot_mapping (see kv_cache.ts for the
// layout and kv_cache_write.wgsl for the kernel). One dispatch per layer per step; grid y = the step's token count.
import { KernelError } from '../core/errors.js';
import type { TokenStep } from './attention_step.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, makeBindGroup, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import {
  checkHeadDim,
  checkKvScales,
  composeKvKernel,
  type KvCache,
  type KvDtype,
  type KvScales,
  kvCacheBytes,
  kvDeclarations,
  kvTag,
} from './kv_cache.js';

export interface KvCacheWriteVariant {
  dtype: KvDtype;
  numKvHeads: number;
  headDim: number;
}

export interface KvCacheWriteBuffers {
  /** (T, Hkv, D) f32, rows `kTokenStride` elements apart. */
  k: BufferSlice;
  v: BufferSlice;
  /** (T) u32 slots (block·16 + offset), SLOT_SKIP for padding. */
  slotMapping: BufferSlice;
  cache: KvCache;
}

export interface KvCacheWriteOptions extends Partial<KvScales> {
  /** Elements between consecutive tokens of k (default Hkv·D); a multiple of 4. */
  kTokenStride?: number;
  vTokenStride?: number;
}

export function kvCacheWriteName(v: KvCacheWriteVariant): string {
  return `kv_cache_write_f32_${kvTag(v.dtype)}`;
}

export class KvCacheWrite {
  readonly name: string;

  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly variant: KvCacheWriteVariant,
    private readonly wgSize: number,
  ) {
    this.name = kvCacheWriteName(variant);
  }

  static async create(gpu: Gpu, variant: KvCacheWriteVariant): Promise<KvCacheWrite> {
    const name = kvCacheWriteName(variant);
    checkHeadDim(name, variant.headDim);
    const unitsPerToken = (variant.numKvHeads * variant.headDim) / 8;
    const wgSize = Math.min(64, 1 << Math.ceil(Math.log2(unitsPerToken)));
    const body = composeKvKernel(
      loadWgsl(new URL('./kv_cache_write.wgsl', import.meta.url)),
      variant.dtype,
      {},
      'kv_cache_write',
    );
    const pipeline = await gpu.pipelines.get({
      label: name,
      code: `${kvDeclarations(variant.dtype, variant.headDim)}\n${body}`,
      constants: { WG_SIZE: wgSize },
    });
    return new KvCacheWrite(gpu, pipeline, variant, wgSize);
  }

  /** Binds one layer's buffers once; the dispatch writes `step.numTokens` tokens each time it is recorded. */
  bind(bufs: KvCacheWriteBuffers, step: TokenStep, opts: KvCacheWriteOptions = {}, label = this.name): Dispatch {
    const { numKvHeads, headDim, dtype } = this.variant;
    const shape = bufs.cache.shape;
    if (shape.dtype !== dtype || shape.numKvHeads !== numKvHeads || shape.headDim !== headDim) {
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: cache is (${shape.dtype}, Hkv ${shape.numKvHeads}, D ${shape.headDim}), expected (${dtype}, Hkv ${numKvHeads}, D ${headDim})`,
      );
    }
    const scales = checkKvScales(label, dtype, opts);
    const rowElems = numKvHeads * headDim;
    const kStride = opts.kTokenStride ?? rowElems;
    const vStride = opts.vTokenStride ?? rowElems;
    for (const [what, stride] of [
      ['kTokenStride', kStride],
      ['vTokenStride', vStride],
    ] as const) {
      if (!(Number.isInteger(stride) && stride >= rowElems && stride % 4 === 0))
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} ${stride} must be a multiple of 4 and ≥ Hkv·D = ${rowElems}`,
        );
    }
    const T = step.maxTokens;
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${T} tokens (step maximum)`,
        );
    };
    need('k', bufs.k, ((T - 1) * kStride + rowElems) * 4);
    need('v', bufs.v, ((T - 1) * vStride + rowElems) * 4);
    need('slotMapping', bufs.slotMapping, T * 4);
    const cacheBytes = kvCacheBytes(shape);
    need('cache.k', bufs.cache.k, cacheBytes);
    need('cache.v', bufs.cache.v, cacheBytes);

    const params = new ArrayBuffer(32);
    new Uint32Array(params, 0, 4).set([numKvHeads, kStride / 4, vStride / 4, 0]);
    new Float32Array(params, 16, 2).set([1 / scales.kScale, 1 / scales.vScale]);
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint8Array(params));
    const bindGroup = makeBindGroup(this.gpu, label, this.pipeline, [
      uniform,
      bufs.k,
      bufs.v,
      bufs.slotMapping,
      bufs.cache.k,
      bufs.cache.v,
    ]);
    const gx = Math.ceil((numKvHeads * headDim) / 8 / this.wgSize);
    const pipeline = this.pipeline;
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

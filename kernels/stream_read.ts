// stream_read wrapper: the streaming-read peak kernel (see stream_read.wgsl). Benchmarks only.
// src: (bytes / 16) vec4<u32> · out: (workgroups) u32 wrapping sums of each workgroup's chunk
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

export interface StreamReadVariant {
  wgSize?: number;
  items?: number;
}

export class StreamRead {
  readonly name = 'stream_read_u32x4';
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    readonly wgSize: number,
    readonly items: number,
  ) {}

  static async create(gpu: Gpu, variant: StreamReadVariant = {}): Promise<StreamRead> {
    const wgSize = variant.wgSize ?? 256;
    const items = variant.items ?? 8;
    if (wgSize & (wgSize - 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `stream_read: wgSize ${wgSize} must be a power of two`);
    const pipeline = await gpu.pipelines.get({
      label: 'stream_read_u32x4',
      code: loadWgsl(new URL('./stream_read.wgsl', import.meta.url)),
      constants: { WG_SIZE: wgSize, ITEMS: items },
    });
    return new StreamRead(gpu, pipeline, wgSize, items);
  }

  /** Workgroups (= u32 sums written) for a source of `bytes` bytes. */
  numWorkgroups(bytes: number): number {
    return Math.ceil(bytes / 16 / (this.wgSize * this.items));
  }

  bind(bufs: { src: BufferSlice; out: BufferSlice }, bytes: number, label = this.name): Dispatch {
    if (bytes % 16 !== 0 || bytes <= 0)
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${bytes} bytes must be a positive multiple of 16`);
    if (sliceBytes(bufs.src) < bytes)
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: src has ${sliceBytes(bufs.src)} bytes, need ${bytes}`);
    const n = this.numWorkgroups(bytes);
    if (sliceBytes(bufs.out) < n * 4)
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: out has ${sliceBytes(bufs.out)} bytes, need ${n * 4}`);
    const [gx, gy] = grid(n, this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const uniform = createUniform(this.gpu, `${label}/params`, new Uint32Array([bytes / 16, gx]));
    return simpleDispatch(this.gpu, label, this.pipeline, [uniform, bufs.src, bufs.out], [gx, gy]);
  }

  /** What `out` must hold for `words` (u32 view of src): per-workgroup wrapping sums. */
  expectedSums(words: Uint32Array): Uint32Array {
    const chunkWords = this.wgSize * this.items * 4;
    const out = new Uint32Array(Math.ceil(words.length / chunkWords));
    for (let i = 0; i < words.length; i++) {
      const w = Math.floor(i / chunkWords);
      out[w] = (out[w] + words[i]) >>> 0;
    }
    return out;
  }
}

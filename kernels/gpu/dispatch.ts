// A kernel invocation with its bind group made once (at load time), ready to be recorded into any compute pass.
import { KernelError } from '../../core/errors.js';
import type { Gpu } from './device.js';

/** A buffer or a byte range of one; offsets must respect minStorageBufferOffsetAlignment. */
export type BufferSlice = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface Dispatch {
  label: string;
  encode(pass: GPUComputePassEncoder): void;
}

export function bindingResource(slice: BufferSlice): GPUBufferBinding {
  return 'buffer' in slice && !('mapState' in slice) ? slice : { buffer: slice as GPUBuffer };
}

/** Byte size a slice exposes to the shader. */
export function sliceBytes(slice: BufferSlice): number {
  if ('mapState' in slice) return slice.size;
  return slice.size ?? slice.buffer.size - (slice.offset ?? 0);
}

/** Workgroup counts for `n` workgroups: x up to the per-dimension limit, the rest in y. */
export function grid(n: number, maxPerDim = 65535): [number, number] {
  if (n <= maxPerDim) return [Math.max(1, n), 1];
  const y = Math.ceil(n / maxPerDim);
  if (y > maxPerDim) throw new KernelError('DAWN_ERR_KERNEL_GRID', `grid: ${n} workgroups exceed ${maxPerDim}²`);
  return [Math.ceil(n / y), y];
}

export function makeBindGroup(
  gpu: Gpu,
  label: string,
  pipeline: GPUComputePipeline,
  slices: BufferSlice[],
): GPUBindGroup {
  return gpu.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: slices.map((s, binding) => ({ binding, resource: bindingResource(s) })),
  });
}

/** A plain dispatch of `pipeline` over `workgroups` with bindings 0..n-1 of group 0 set from `slices`. */
export function simpleDispatch(
  gpu: Gpu,
  label: string,
  pipeline: GPUComputePipeline,
  slices: BufferSlice[],
  workgroups: [number, number?, number?],
): Dispatch {
  const bindGroup = makeBindGroup(gpu, label, pipeline, slices);
  const [x, y = 1, z = 1] = workgroups;
  return {
    label,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
    },
  };
}

/** Records `dispatches` into one command encoder / one compute pass, submits, and waits. */
export async function runDispatches(gpu: Gpu, dispatches: Dispatch[], label = 'run'): Promise<void> {
  const encoder = gpu.device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  for (const d of dispatches) d.encode(pass);
  pass.end();
  gpu.queue.submit([encoder.finish()]);
  await gpu.sync(label);
}

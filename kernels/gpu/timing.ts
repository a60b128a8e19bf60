// GPU timing for benchmarks: timestamp queries around a compute pass where the device has them,
// otherwise wall clock from submit to onSubmittedWorkDone (which includes submit overhead; the result says which).
import { readBuffer } from './buffers.js';
import type { Gpu } from './device.js';

export interface Timing {
  msPerRep: number;
  method: 'timestamp' | 'wall';
}

export interface TimeOptions {
  reps?: number;
  warmup?: number;
  /** Force wall-clock timing even where timestamps exist (to compare the two). */
  wallClock?: boolean;
}

/**
 * Times `encode` (which records one kernel's dispatches into the pass it is given) by repeating it `reps` times
 * inside one compute pass, after `warmup` untimed repetitions.
 */
export async function timeDispatches(
  gpu: Gpu,
  encode: (pass: GPUComputePassEncoder, rep: number) => void,
  options: TimeOptions = {},
): Promise<Timing> {
  const reps = options.reps ?? 20;
  const warmup = options.warmup ?? 2;
  if (warmup > 0) {
    const enc = gpu.device.createCommandEncoder({ label: 'warmup' });
    const pass = enc.beginComputePass();
    for (let i = 0; i < warmup; i++) encode(pass, i);
    pass.end();
    gpu.queue.submit([enc.finish()]);
    await gpu.sync('benchmark warm-up');
  }
  const useTimestamps = gpu.caps.hasTimestamps && !options.wallClock;
  const querySet = useTimestamps ? gpu.device.createQuerySet({ label: 'timing', type: 'timestamp', count: 2 }) : null;
  const resolve = useTimestamps
    ? gpu.device.createBuffer({ label: 'timing/resolve', size: 16, usage: 0x0200 | 0x0004 }) // QUERY_RESOLVE | COPY_SRC
    : null;
  try {
    const enc = gpu.device.createCommandEncoder({ label: 'timed' });
    const pass = enc.beginComputePass(
      querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
    );
    for (let i = 0; i < reps; i++) encode(pass, i);
    pass.end();
    if (querySet && resolve) enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
    const t0 = performance.now();
    gpu.queue.submit([enc.finish()]);
    await gpu.sync('benchmark');
    const wallMs = performance.now() - t0;
    if (resolve) {
      const [begin, end] = new BigInt64Array(await readBuffer(gpu, resolve, 0, 16));
      const ns = Number(end - begin);
      if (ns > 0) return { msPerRep: ns / 1e6 / reps, method: 'timestamp' };
    }
    return { msPerRep: wallMs / reps, method: 'wall' };
  } finally {
    querySet?.destroy();
    resolve?.destroy();
  }
}

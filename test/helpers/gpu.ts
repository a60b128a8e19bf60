// One GPU per test file, opened lazily; suites skip with the reason printed when no adapter exists.
import { type Gpu, tryOpenGpu } from '../../kernels/gpu/device.js';

let opened: Promise<{ gpu: Gpu | null; reason: string }> | null = null;

export function testGpu(): Promise<{ gpu: Gpu | null; reason: string }> {
  opened ??= tryOpenGpu().then((r) => {
    if (!r.gpu) console.log(`GPU tests skipped: ${r.reason}`);
    return r;
  });
  return opened;
}

/** Top-level await in a test file: the GPU, or null (and the reason was printed). */
export async function gpuOrSkip(): Promise<Gpu | null> {
  return (await testGpu()).gpu;
}

/** True where the adapter is real hardware (the GPU-only suites need it). */
export function isHardware(gpu: Gpu | null): gpu is Gpu {
  return gpu !== null && !gpu.caps.adapter.isSoftware;
}

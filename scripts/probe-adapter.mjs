// Prints the WebGPU adapter Dawn finds ("software" or "hardware" first) and exits 0, or exits 1 with the reason.
// Used by scripts/setup to decide whether a CPU Vulkan driver must be installed.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
try {
  const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('requestAdapter returned null');
  const device = await adapter.requestDevice();
  const i = adapter.info;
  const software = i.isFallbackAdapter || i.architecture === 'software' || /llvmpipe|swiftshader/i.test(i.description);
  console.log(`${software ? 'software' : 'hardware'} ${i.description || i.device}`);
  device.destroy();
  process.exit(0);
} catch (err) {
  console.log(`none ${String(err.message ?? err).split('\n')[0]}`);
  process.exit(1);
}

// The GPU runtime itself: capabilities, error reporting by label, chunked upload and readback.
import { describe, expect, it } from 'vitest';
import { createBuffer, readBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();

describe.skipIf(!gpu)('gpu runtime', () => {
  const g = gpu!;

  it('reports capabilities the kernels read', () => {
    console.log(
      `adapter: ${g.caps.adapter.description} features f16=${g.caps.hasF16} subgroups=${g.caps.hasSubgroups}`,
    );
    expect(g.caps.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(g.caps.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
  });

  it('uploads ragged sizes and offsets and reads them back', async () => {
    const buf = createBuffer(g, 'ragged', 1001);
    const data = Uint8Array.from({ length: 997 }, (_, i) => (i * 7) & 0xff);
    writeBuffer(g, buf, 4, data);
    const back = new Uint8Array(await readBuffer(g, buf, 4, 997));
    expect(back).toEqual(data);
  });

  it('refuses uploads past the end and misaligned offsets, naming the buffer', () => {
    const buf = createBuffer(g, 'small', 16);
    expect(() => writeBuffer(g, buf, 8, new Uint8Array(16))).toThrow(/upload into small: 16 bytes at offset 8 exceed/);
    expect(() => writeBuffer(g, buf, 2, new Uint8Array(4))).toThrow(/not a multiple of 4/);
  });

  it('turns a shader compile error into an exception naming the kernel and line', async () => {
    await expect(
      g.pipelines.get({ label: 'broken_kernel', code: '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }' }),
    ).rejects.toThrow(/kernel broken_kernel: WGSL failed to compile\n {2}broken_kernel\.wgsl:1:/);
  });

  it('turns a validation error during creation into an exception naming the label', async () => {
    await expect(
      g.scoped('weights/too-big', () =>
        g.device.createBuffer({ label: 'weights/too-big', size: 16, usage: 0x0001 | 0x0080 }),
      ),
    ).rejects.toThrow(/weights\/too-big/); // MAP_READ | STORAGE is not a valid combination
  });

  it('caches pipelines by source and constants', async () => {
    const code =
      'override N: u32 = 1; @group(0) @binding(0) var<storage, read_write> o: array<u32>; @compute @workgroup_size(1) fn main() { o[0] = N; }';
    const a = await g.pipelines.get({ label: 'c', code, constants: { N: 2 } });
    const b = await g.pipelines.get({ label: 'c', code, constants: { N: 2 } });
    const c = await g.pipelines.get({ label: 'c', code, constants: { N: 3 } });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});

describe.skipIf(!gpu)('gpu runtime after device loss', () => {
  it('rejects instead of hanging when the device is gone', async () => {
    const { openGpu } = await import('../../kernels/gpu/device.js');
    const own = await openGpu({ quiet: true });
    const buf = createBuffer(own, 'doomed', 16);
    own.destroy();
    const outcome = await Promise.race([
      readBuffer(own, buf).then(
        () => 'resolved',
        (e: Error) => `rejected: ${e.message}`,
      ),
      new Promise((r) => setTimeout(() => r('hung'), 5000)),
    ]);
    expect(outcome).toMatch(/^rejected: /);
  });
});

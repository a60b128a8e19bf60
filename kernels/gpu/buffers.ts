// Labelled buffers, chunked uploads and readback. Every buffer has a label so GPU errors name it.
import { GpuError } from '../../core/errors.js';
import type { Gpu } from './device.js';

/** writeBuffer copies through a staging area; 64 MiB pieces bound the host memory one upload holds. */
export const UPLOAD_CHUNK_BYTES = 64 * 1024 * 1024;

export const STORAGE = 0x80 | 0x08 | 0x04; // STORAGE | COPY_DST | COPY_SRC (numbers: GPUBufferUsage may not be installed yet)

export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** A storage buffer of at least `bytes` (rounded up to 4; zero-size buffers become 4 bytes). */
export function createBuffer(gpu: Gpu, label: string, bytes: number, usage: number = STORAGE): GPUBuffer {
  if (!Number.isFinite(bytes) || bytes < 0) throw new GpuError('DAWN_ERR_GPU_BUFFER', `buffer ${label}: size ${bytes}`);
  if (bytes > gpu.caps.maxBufferSize) {
    throw new GpuError(
      'DAWN_ERR_GPU_BUFFER_TOO_LARGE',
      `buffer ${label}: ${bytes} bytes requested, the device allows at most ${gpu.caps.maxBufferSize} per buffer`,
    );
  }
  return gpu.device.createBuffer({ label, size: Math.max(4, align4(bytes)), usage });
}

/** Creates a storage buffer holding `data` (uploaded in chunks). */
export function createBufferFrom(gpu: Gpu, label: string, data: ArrayBufferView, usage: number = STORAGE): GPUBuffer {
  const buffer = createBuffer(gpu, label, data.byteLength, usage);
  writeBuffer(gpu, buffer, 0, data);
  return buffer;
}

/**
 * Copies `data` into `buffer` at `byteOffset` in pieces of UPLOAD_CHUNK_BYTES. WebGPU wants 4-byte multiples:
 * a ragged tail is padded with zeros (the buffer itself is always rounded up to 4 bytes).
 */
export function writeBuffer(gpu: Gpu, buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
  if (byteOffset % 4 !== 0) {
    throw new GpuError(
      'DAWN_ERR_GPU_UPLOAD',
      `upload into ${buffer.label}: byte offset ${byteOffset} is not a multiple of 4`,
    );
  }
  if (byteOffset + data.byteLength > buffer.size) {
    throw new GpuError(
      'DAWN_ERR_GPU_UPLOAD',
      `upload into ${buffer.label}: ${data.byteLength} bytes at offset ${byteOffset} exceed its ${buffer.size} bytes`,
    );
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let pos = 0; pos < bytes.byteLength; pos += UPLOAD_CHUNK_BYTES) {
    const piece = bytes.subarray(pos, Math.min(bytes.byteLength, pos + UPLOAD_CHUNK_BYTES));
    if (piece.byteLength % 4 === 0) {
      gpu.queue.writeBuffer(buffer, byteOffset + pos, piece);
    } else {
      const padded = new Uint8Array(align4(piece.byteLength));
      padded.set(piece);
      gpu.queue.writeBuffer(buffer, byteOffset + pos, padded);
    }
  }
}

/**
 * Streams chunks (e.g. ranges read from a safetensors file) into `buffer`. Waits for the queue every
 * `syncEveryBytes` so Dawn's staging memory stays bounded however large the tensor is.
 */
export async function streamIntoBuffer(
  gpu: Gpu,
  buffer: GPUBuffer,
  chunks: AsyncIterable<Uint8Array>,
  onProgress?: (bytes: number) => void,
  syncEveryBytes = 4 * UPLOAD_CHUNK_BYTES,
): Promise<number> {
  let offset = 0;
  let sinceSync = 0;
  for await (const chunk of chunks) {
    writeBuffer(gpu, buffer, offset, chunk);
    offset += chunk.byteLength;
    sinceSync += chunk.byteLength;
    onProgress?.(chunk.byteLength);
    if (sinceSync >= syncEveryBytes) {
      await gpu.sync(`upload into ${buffer.label}`);
      sinceSync = 0;
    }
  }
  return offset;
}

/** Reads `bytes` bytes of `buffer` from `byteOffset` back to the host (through a MAP_READ staging buffer). */
export async function readBuffer(gpu: Gpu, buffer: GPUBuffer, byteOffset = 0, bytes = buffer.size - byteOffset) {
  const size = align4(bytes);
  const staging = gpu.device.createBuffer({
    label: `${buffer.label}/readback`,
    size: Math.max(4, size),
    usage: 0x0001 | 0x0008, // MAP_READ | COPY_DST
  });
  try {
    const encoder = gpu.device.createCommandEncoder({ label: `${buffer.label}/readback` });
    encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    gpu.queue.submit([encoder.finish()]);
    gpu.throwIfFailed(`readback of ${buffer.label}`);
    try {
      await staging.mapAsync(0x0001);
    } catch (err) {
      gpu.throwIfFailed(`readback of ${buffer.label}`);
      throw new GpuError('DAWN_ERR_GPU_READBACK', `readback of ${buffer.label} failed: ${(err as Error).message}`);
    }
    return staging.getMappedRange(0, size).slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

export async function readF32(gpu: Gpu, buffer: GPUBuffer, count?: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, buffer, 0, count === undefined ? undefined : count * 4));
}

export async function readU32(gpu: Gpu, buffer: GPUBuffer, count?: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, buffer, 0, count === undefined ? undefined : count * 4));
}

/** A small uniform buffer for a kernel's Params struct (shapes, strides, eps). */
export function createUniform(gpu: Gpu, label: string, data: ArrayBufferView): GPUBuffer {
  const buffer = gpu.device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: 0x40 | 0x08,
  });
  writeBuffer(gpu, buffer, 0, data);
  return buffer;
}

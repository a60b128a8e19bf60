// Sequential writes into one GPU buffer from pieces of any length. WebGPU wants 4-byte-aligned offsets and sizes,
// but IR pieces can end mid-word (an expert's [N, K/16] block scales with odd N·K/16), so up to 3 bytes carry over
// to the next piece. Waits for the queue every `syncEveryBytes` across all writers, so Dawn's staging memory stays
// bounded however large the checkpoint is.
import { GpuError } from '../core/errors.js';
import { UPLOAD_CHUNK_BYTES, writeBuffer } from '../kernels/gpu/buffers.js';
import type { Gpu } from '../kernels/gpu/device.js';

/** Shared by every writer of one upload: bytes queued since the last wait. */
export class UploadThrottle {
  private sinceSync = 0;
  constructor(
    private readonly gpu: Gpu,
    private readonly syncEveryBytes = 4 * UPLOAD_CHUNK_BYTES,
  ) {}

  async queued(bytes: number, where: string): Promise<void> {
    this.sinceSync += bytes;
    if (this.sinceSync >= this.syncEveryBytes) {
      this.sinceSync = 0;
      await this.gpu.sync(where);
    }
  }
}

export class BufferWriter {
  private offset = 0;
  private carry = new Uint8Array(0);

  constructor(
    private readonly gpu: Gpu,
    private readonly buffer: GPUBuffer,
    private readonly throttle: UploadThrottle,
  ) {}

  /** Bytes accepted so far (written or carried). */
  get bytesWritten(): number {
    return this.offset + this.carry.byteLength;
  }

  async write(piece: Uint8Array): Promise<void> {
    let bytes = piece;
    if (this.carry.byteLength) {
      bytes = new Uint8Array(this.carry.byteLength + piece.byteLength);
      bytes.set(this.carry);
      bytes.set(piece, this.carry.byteLength);
    }
    const aligned = bytes.byteLength & ~3;
    if (aligned > 0) writeBuffer(this.gpu, this.buffer, this.offset, bytes.subarray(0, aligned));
    this.carry = bytes.slice(aligned);
    this.offset += aligned;
    await this.throttle.queued(aligned, `upload into ${this.buffer.label}`);
  }

  /** Writes the carried tail (zero-padded to 4 bytes) and checks the buffer received exactly `expectedBytes`. */
  finish(expectedBytes: number): void {
    if (this.carry.byteLength) writeBuffer(this.gpu, this.buffer, this.offset, this.carry);
    const total = this.offset + this.carry.byteLength;
    this.offset = total;
    this.carry = new Uint8Array(0);
    if (total !== expectedBytes)
      throw new GpuError(
        'DAWN_ERR_GPU_UPLOAD',
        `upload into ${this.buffer.label}: wrote ${total} bytes, expected ${expectedBytes}`,
      );
  }
}

// embedding wrapper: gathers rows of a BF16 (V, H) table by token id into (T, H) f32 (or f16). The table may be
// larger than one storage binding (Qwen3-VL-30B: 151936 × 2048 bf16 = 622 MB; lavapipe binds 128 MiB), so it is
// described as parts (row ranges, each one binding) and bound as one dispatch per part. See embedding.wgsl.
//   ids: (T) u32 · table: (V, H) bf16 in parts · out: (T, H) dst
import { KernelError } from '../core/errors.js';
import { createUniform } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, type Dispatch, grid, simpleDispatch, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';
import { bytesPerElement, type FloatType, wgslHeader } from './wgsl_types.js';

/** Rows [rowStart, rowStart + rows) of the table, bf16 row-major, starting at the slice's first byte. */
export interface EmbeddingPart {
  slice: BufferSlice;
  rowStart: number;
  rows: number;
}

export interface EmbeddingTable {
  vocab: number;
  hidden: number;
  parts: EmbeddingPart[];
}

/**
 * Cuts a table held in one buffer (row-major bf16, starting at byte 0) into parts of at most `maxBindingBytes`
 * (default: the device's storage-binding limit) whose byte offsets respect the device's offset alignment.
 */
export function embeddingTableFromBuffer(
  gpu: Gpu,
  buffer: GPUBuffer,
  vocab: number,
  hidden: number,
  maxBindingBytes = gpu.caps.maxStorageBufferBindingSize,
): EmbeddingTable {
  const rowBytes = hidden * 2;
  const align = gpu.caps.minStorageBufferOffsetAlignment;
  const rowsPerAlign = align / gcd(rowBytes, align); // part starts must be multiples of this many rows
  const maxRows = Math.floor(Math.floor((maxBindingBytes - 4) / rowBytes) / rowsPerAlign) * rowsPerAlign;
  if (maxRows < 1)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `embedding: a binding of ${maxBindingBytes} bytes holds no aligned group of ${rowsPerAlign} rows of ${rowBytes} bytes`,
    );
  if (buffer.size < vocab * rowBytes)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `embedding: table buffer ${buffer.label} has ${buffer.size} bytes, expected at least ${vocab * rowBytes} for (${vocab}, ${hidden}) bf16`,
    );
  const parts: EmbeddingPart[] = [];
  for (let rowStart = 0; rowStart < vocab; rowStart += maxRows) {
    const rows = Math.min(maxRows, vocab - rowStart);
    const offset = rowStart * rowBytes;
    const size = Math.min(Math.ceil((rows * rowBytes) / 4) * 4, buffer.size - offset);
    parts.push({ slice: { buffer, offset, size }, rowStart, rows });
  }
  return { vocab, hidden, parts };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export class Embedding {
  readonly name: string;
  private constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly dst: FloatType,
    private readonly wgSize: number,
  ) {
    this.name = `embedding_bf16_${dst}`;
  }

  static async create(gpu: Gpu, variant: { dst: FloatType; wgSize?: number }): Promise<Embedding> {
    const wgSize = variant.wgSize ?? 256;
    const header = wgslHeader(gpu.caps, { f16: variant.dst === 'f16', subgroups: false }, { dst_t: variant.dst });
    const pipeline = await gpu.pipelines.get({
      label: `embedding_bf16_${variant.dst}`,
      code: `${header}\n${loadWgsl(new URL('./embedding.wgsl', import.meta.url))}`,
      constants: { WG_SIZE: wgSize },
    });
    return new Embedding(gpu, pipeline, variant.dst, wgSize);
  }

  /** One dispatch per table part, all writing into `out`; record them together and in order. */
  bind(bufs: { ids: BufferSlice; out: BufferSlice }, table: EmbeddingTable, tokens: number, label = this.name) {
    const { vocab, hidden, parts } = table;
    if (!(Number.isInteger(tokens) && tokens >= 1 && hidden >= 1 && vocab >= 1))
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: tokens ${tokens}, hidden ${hidden} and vocab ${vocab} must be ≥ 1`,
      );
    checkParts(label, table);
    const need = (what: string, slice: BufferSlice, bytes: number) => {
      if (sliceBytes(slice) < bytes)
        throw new KernelError(
          'DAWN_ERR_KERNEL_SHAPE',
          `${label}: ${what} has ${sliceBytes(slice)} bytes, expected at least ${bytes} for ${tokens} tokens × ${hidden}`,
        );
    };
    need('ids', bufs.ids, tokens * 4);
    need('out', bufs.out, tokens * hidden * bytesPerElement[this.dst]);
    const [gx, gy] = grid(Math.ceil((tokens * hidden) / this.wgSize), this.gpu.caps.maxComputeWorkgroupsPerDimension);
    const dispatches: Dispatch[] = parts.map((part, p) => {
      const params = new Uint32Array([tokens, hidden, part.rowStart, part.rows, vocab, gx, 0, 0]);
      const partLabel = parts.length > 1 ? `${label}[part ${p}]` : label;
      const uniform = createUniform(this.gpu, `${partLabel}/params`, params);
      return simpleDispatch(this.gpu, partLabel, this.pipeline, [uniform, bufs.ids, part.slice, bufs.out], [gx, gy]);
    });
    return dispatches;
  }
}

/** Parts must tile [0, vocab) in order and each slice must hold its rows. */
function checkParts(label: string, table: EmbeddingTable): void {
  let next = 0;
  for (const [p, part] of table.parts.entries()) {
    if (part.rowStart !== next || part.rows < 1)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: table part ${p} covers rows [${part.rowStart}, ${part.rowStart + part.rows}), expected it to start at row ${next} with ≥ 1 row`,
      );
    const bytes = Math.ceil((part.rows * table.hidden * 2) / 4) * 4;
    if (sliceBytes(part.slice) < bytes)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: table part ${p} has ${sliceBytes(part.slice)} bytes, expected at least ${bytes} for ${part.rows} rows × ${table.hidden} bf16`,
      );
    next += part.rows;
  }
  if (next !== table.vocab)
    throw new KernelError(
      'DAWN_ERR_KERNEL_SHAPE',
      `${label}: table parts cover ${next} rows, expected the vocabulary's ${table.vocab}`,
    );
}

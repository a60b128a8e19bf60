// Splits a weight that does not fit one storage binding (lm_head 151936×2048 bf16 = 622 MB > lavapipe's 128 MiB;
// bigger vocabularies near the H100's 2 GiB) into byte ranges of its data buffer, one dispatch each. Dense weights
// (E = 1) split by rows, expert stacks by whole experts. Offsets are multiples of the device's offset alignment.
// Scales stay bound whole (they are 1/8 of the data or less): kernels index them with global row/expert numbers.
import { KernelError } from '../core/errors.js';

export interface WeightChunk {
  /** Byte range of w_data this dispatch binds. */
  dataOffset: number;
  dataBytes: number;
  /** Rows [rowBegin, rowEnd) of each expert this dispatch covers (all rows when split by experts). */
  rowBegin: number;
  rowEnd: number;
  /** Experts [expertBegin, expertEnd) it covers. */
  expertBegin: number;
  expertEnd: number;
}

export interface SplitSpec {
  label: string;
  numExperts: number;
  N: number;
  /** Bytes of one row of w_data. */
  rowBytes: number;
  maxBindingBytes: number;
  offsetAlignment: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Largest count ≤ max/unitBytes whose byte size is a multiple of `align` (0 when none fits). */
function alignedCount(unitBytes: number, maxBytes: number, align: number): number {
  const step = align / gcd(unitBytes, align);
  return Math.floor(Math.floor(maxBytes / unitBytes) / step) * step;
}

export function planWeightChunks(s: SplitSpec): WeightChunk[] {
  const { numExperts: E, N, rowBytes } = s;
  const expertBytes = N * rowBytes;
  if (E * expertBytes <= s.maxBindingBytes) {
    return [{ dataOffset: 0, dataBytes: E * expertBytes, rowBegin: 0, rowEnd: N, expertBegin: 0, expertEnd: E }];
  }
  const chunks: WeightChunk[] = [];
  if (E === 1) {
    const rows = alignedCount(rowBytes, s.maxBindingBytes, s.offsetAlignment);
    if (rows < 1)
      throw new KernelError(
        'DAWN_ERR_KERNEL_BINDING_TOO_SMALL',
        `${s.label}: one row is ${rowBytes} bytes; no aligned row range fits a ${s.maxBindingBytes}-byte binding`,
      );
    for (let r = 0; r < N; r += rows) {
      const end = Math.min(N, r + rows);
      chunks.push({
        dataOffset: r * rowBytes,
        dataBytes: (end - r) * rowBytes,
        rowBegin: r,
        rowEnd: end,
        expertBegin: 0,
        expertEnd: 1,
      });
    }
    return chunks;
  }
  const experts = alignedCount(expertBytes, s.maxBindingBytes, s.offsetAlignment);
  if (experts < 1)
    throw new KernelError(
      'DAWN_ERR_KERNEL_BINDING_TOO_SMALL',
      `${s.label}: one expert is ${expertBytes} bytes; an expert stack splits by whole experts (aligned to ` +
        `${s.offsetAlignment} bytes) and none fits a ${s.maxBindingBytes}-byte binding`,
    );
  for (let e = 0; e < E; e += experts) {
    const end = Math.min(E, e + experts);
    chunks.push({
      dataOffset: e * expertBytes,
      dataBytes: (end - e) * expertBytes,
      rowBegin: 0,
      rowEnd: N,
      expertBegin: e,
      expertEnd: end,
    });
  }
  return chunks;
}

// How IR buffers are produced: each buffer is an ordered list of pieces, each read (and converted or transposed)
// from the checkpoint only when asked. Pieces are small (one expert slab, or at most `maxPieceBytes`), so loading
// streams with bounded host memory.
import { LoaderError } from '../core/errors.js';
import type { Checkpoint, CheckpointTensor } from './checkpoint.js';
import { dtypeByteSize, formatShape, numElements } from './dtypes.js';
import { decodeFloats, f32ArrayToBytes, toBf16Bytes } from './float_formats.js';
import type { IrBufferName } from './ir.js';

export const defaultMaxPieceBytes = 64 * 1024 * 1024;

export interface Piece {
  byteLength: number;
  produce(): Promise<Uint8Array>;
}

export interface BufferPlan {
  name: IrBufferName;
  byteLength: number;
  pieces: Piece[];
}

export function bufferPlan(name: IrBufferName, pieces: Piece[]): BufferPlan {
  return { name, byteLength: pieces.reduce((n, p) => n + p.byteLength, 0), pieces };
}

/** Elements [elemOffset, elemOffset + numElems) of a tensor, as bf16 (BF16 is copied; F16/F32 are rounded). */
export function bf16Pieces(
  ck: Checkpoint,
  t: CheckpointTensor,
  elemOffset: number,
  numElems: number,
  maxPieceBytes: number,
): Piece[] {
  const size = dtypeByteSize(t.dtype);
  const perPiece = Math.max(1, Math.floor(maxPieceBytes / Math.max(size, 2)));
  const out: Piece[] = [];
  for (let e = 0; e < numElems; e += perPiece) {
    const n = Math.min(perPiece, numElems - e);
    const start = (elemOffset + e) * size;
    out.push({
      byteLength: n * 2,
      produce: async () => toBf16Bytes(await ck.readRange(t, start, n * size), t.dtype, t.name),
    });
  }
  return out;
}

/** Raw bytes [byteOffset, byteOffset + byteLength) of a tensor, copied unchanged. */
export function rawPieces(
  ck: Checkpoint,
  t: CheckpointTensor,
  byteOffset: number,
  byteLength: number,
  maxPieceBytes: number,
): Piece[] {
  const out: Piece[] = [];
  for (let b = 0; b < byteLength; b += maxPieceBytes) {
    const n = Math.min(maxPieceBytes, byteLength - b);
    const start = byteOffset + b;
    out.push({ byteLength: n, produce: () => ck.readRange(t, start, n) });
  }
  return out;
}

/**
 * One [rows, cols] slab starting at element `elemOffset`, written out as [cols, rows]: the fused expert layouts
 * that store W as [K, N] (used as x · W) become [N, K]. `toBf16` converts float data; otherwise bytes move as is.
 */
export function transposedPiece(
  ck: Checkpoint,
  t: CheckpointTensor,
  elemOffset: number,
  rows: number,
  cols: number,
  toBf16: boolean,
): Piece {
  const inSize = dtypeByteSize(t.dtype);
  const outSize = toBf16 ? 2 : inSize;
  return {
    byteLength: rows * cols * outSize,
    produce: async () => {
      let src = await ck.readRange(t, elemOffset * inSize, rows * cols * inSize);
      if (toBf16) src = toBf16Bytes(src, t.dtype, t.name);
      const out = new Uint8Array(rows * cols * outSize);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const from = (r * cols + c) * outSize;
          const to = (c * rows + r) * outSize;
          for (let b = 0; b < outSize; b++) out[to + b] = src[from + b];
        }
      }
      return out;
    },
  };
}

/** A small f32 buffer computed from scale tensors (global scales, channel scales, pre_quant_scale). */
export function f32Piece(numValues: number, compute: () => Promise<Float32Array>): Piece {
  return {
    byteLength: numValues * 4,
    produce: async () => {
      const v = await compute();
      if (v.length !== numValues) {
        throw new LoaderError('DAWN_ERR_LOADER_INTERNAL', `scale buffer has ${v.length} values, planned ${numValues}`);
      }
      return f32ArrayToBytes(v);
    },
  };
}

/** Reads a float tensor (F32/BF16/F16) of any shape as f32 values. */
export async function readFloats(ck: Checkpoint, t: CheckpointTensor): Promise<Float32Array> {
  return decodeFloats(await ck.read(t), t.dtype, `tensor "${t.name}" (${t.file.fileName})`);
}

/** A scale that must be a single positive finite number. `invert` turns a dividing scale into a multiplying one. */
export async function readScalar(ck: Checkpoint, t: CheckpointTensor, invert: boolean): Promise<number> {
  const v = await readFloats(ck, t);
  if (v.length !== 1) {
    throw new LoaderError(
      'DAWN_ERR_LOADER_SHAPE_MISMATCH',
      `tensor "${t.name}" (${t.file.fileName}) has shape ${formatShape(t.shape)}; expected one value`,
    );
  }
  return checkedScale(v[0], t, invert);
}

export function checkedScale(value: number, t: CheckpointTensor, invert: boolean): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LoaderError(
      'DAWN_ERR_LOADER_BAD_SCALE',
      `tensor "${t.name}" (${t.file.fileName}) holds scale ${value}; expected a positive finite number`,
    );
  }
  return invert ? Math.fround(1 / value) : value;
}

export function isScalarShape(shape: readonly number[]): boolean {
  return numElements(shape) === 1 && shape.length <= 1;
}

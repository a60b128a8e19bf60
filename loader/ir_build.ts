// Turns recognized sources (one matrix, a grid of expert slices, or one fused tensor) into an IR tensor whose
// buffers are plans: ordered pieces that read, convert or transpose checkpoint bytes when produced.
import { LoaderError } from '../core/errors.js';
import type { Checkpoint, CheckpointTensor } from './checkpoint.js';
import { dtypeByteSize, numElements } from './dtypes.js';
import type { FusedSource } from './fused_experts.js';
import type { IrTensor } from './ir.js';
import type { ScaleSource, SliceSource } from './linear_source.js';
import {
  type BufferPlan,
  bf16Pieces,
  bufferPlan,
  checkedScale,
  f32Piece,
  type Piece,
  rawPieces,
  readFloats,
  readScalar,
  transposedPiece,
} from './pieces.js';

type Nvfp4Slice = Extract<SliceSource, { encoding: 'nvfp4' }>;
type Fp8Slice = Extract<SliceSource, { encoding: 'fp8' }>;

export interface BuildContext {
  ck: Checkpoint;
  maxPieceBytes: number;
}

/** A dense tensor of any shape, as bf16. */
export function buildDense(t: CheckpointTensor, shape: number[], ctx: BuildContext): IrTensor<BufferPlan> {
  return {
    format: 'bf16',
    shape,
    data: bufferPlan('data', bf16Pieces(ctx.ck, t, 0, numElements(t.shape), ctx.maxPieceBytes)),
  };
}

/**
 * grid[e][s]: expert e, segment s (a plain linear is a 1×1 grid). Every cell has the same encoding (checked by
 * the caller); buffers are laid out expert-major, then segment rows, matching [E, N, K].
 */
export function buildFromSlices(
  shape: number[],
  segmentRows: number[],
  grid: SliceSource[][],
  ctx: BuildContext,
): IrTensor<BufferPlan> {
  const { ck, maxPieceBytes: max } = ctx;
  const cells = grid.flat();
  const each = (f: (s: SliceSource) => Piece[]) => cells.flatMap(f);
  const first = cells[0];
  const E = grid.length;
  const S = segmentRows.length;
  const K = shape[shape.length - 1];
  /** [S, E] values, segment-major: gate's E values, then up's. */
  const segmentMajor = (read: (s: SliceSource) => Promise<number>) =>
    f32Piece(S * E, async () => {
      const out = new Float32Array(S * E);
      for (let e = 0; e < E; e++) for (let s = 0; s < S; s++) out[s * E + e] = await read(grid[e][s]);
      return out;
    });
  const scaleOf = (src: ScaleSource | null) => (src ? readScalar(ck, src.tensor, src.invert) : Promise.resolve(0));
  switch (first.encoding) {
    case 'bf16':
      return {
        format: 'bf16',
        shape,
        data: bufferPlan(
          'data',
          each((s) => bf16Pieces(ck, s.data, 0, numElements(s.data.shape), max)),
        ),
      };
    case 'nvfp4': {
      const nv = cells as Nvfp4Slice[];
      return {
        format: 'nvfp4',
        shape,
        segmentRows,
        packed: bufferPlan(
          'packed',
          each((s) => rawPieces(ck, s.data, 0, s.data.byteLength, max)),
        ),
        blockScale: bufferPlan(
          'blockScale',
          nv.flatMap((s) => rawPieces(ck, s.blockScale, 0, s.blockScale.byteLength, max)),
        ),
        globalScale: bufferPlan('globalScale', [segmentMajor((s) => scaleOf((s as Nvfp4Slice).global))]),
        inputScale: nv[0].input
          ? bufferPlan('inputScale', [segmentMajor((s) => scaleOf((s as Nvfp4Slice).input))])
          : null,
        preQuantScale: nv[0].preQuant
          ? bufferPlan('preQuantScale', [f32Piece(E * K, () => sharedPreQuantScales(ck, grid as Nvfp4Slice[][], K))])
          : null,
      };
    }
    case 'fp8': {
      const f8 = cells as Fp8Slice[];
      const scalePieces =
        first.granularity === 'tensor'
          ? [segmentMajor((s) => readScalar(ck, (s as Fp8Slice).scale, false))]
          : f8.map((s) => f32Piece(numElements(s.scale.shape), () => positiveFloats(ck, s.scale)));
      return {
        format: 'fp8',
        shape,
        segmentRows,
        data: bufferPlan(
          'data',
          each((s) => rawPieces(ck, s.data, 0, s.data.byteLength, max)),
        ),
        scale:
          first.granularity === 'block' && first.block
            ? { granularity: 'block', blockRows: first.block[0], blockCols: first.block[1] }
            : { granularity: first.granularity === 'channel' ? 'channel' : 'tensor' },
        scaleData: bufferPlan('scaleData', scalePieces),
        inputScale: f8[0].input
          ? bufferPlan('inputScale', [segmentMajor((s) => scaleOf((s as Fp8Slice).input))])
          : null,
      };
    }
  }
}

async function positiveFloats(ck: Checkpoint, t: CheckpointTensor): Promise<Float32Array> {
  const v = await readFloats(ck, t);
  for (const x of v) checkedScale(x, t, false);
  return v;
}

/**
 * pre_quant_scale multiplies x, so all segments of one expert (gate and up read the same x) must agree;
 * ModelOpt resmooths fused gate/up to one scale for exactly this reason.
 */
async function sharedPreQuantScales(ck: Checkpoint, grid: Nvfp4Slice[][], K: number): Promise<Float32Array> {
  const out = new Float32Array(grid.length * K);
  for (let e = 0; e < grid.length; e++) {
    const [first, ...rest] = grid[e];
    const v = await readFloats(ck, first.preQuant!);
    for (const other of rest) {
      const w = await readFloats(ck, other.preQuant!);
      if (w.some((x, i) => x !== v[i])) {
        throw new LoaderError(
          'DAWN_ERR_LOADER_FORMAT_CONFLICT',
          `pre_quant_scale "${other.preQuant!.name}" differs from "${first.preQuant!.name}"; fused rows share one input x, so they need one scale`,
          { hint: 're-export with ModelOpt resmoothing of fused gate/up layers' },
        );
      }
    }
    out.set(v, e * K);
  }
  return out;
}

/** A fused expert tensor: per expert, copied ([E, N, K]) or transposed ([E, K, N] → [N, K]). */
export function buildFused(
  shape: number[],
  segmentRows: number[],
  src: FusedSource,
  ctx: BuildContext,
): IrTensor<BufferPlan> {
  const { ck, maxPieceBytes: max } = ctx;
  const [E, N, K] = shape;
  const S = segmentRows.length;
  /** Expert slabs of a [E, N, k] (nk) or [E, k, N] (kn) tensor, as [E, N, k] bytes. */
  const slabs = (t: CheckpointTensor, k: number, toBf16: boolean): Piece[] => {
    const out: Piece[] = [];
    for (let e = 0; e < E; e++) {
      if (src.orientation === 'kn') out.push(transposedPiece(ck, t, e * N * k, k, N, toBf16));
      else if (toBf16) out.push(...bf16Pieces(ck, t, e * N * k, N * k, max));
      else out.push(...rawPieces(ck, t, e * N * k * dtypeByteSize(t.dtype), N * k * dtypeByteSize(t.dtype), max));
    }
    return out;
  };
  /** A scale stored as one value or one per expert, spread to [S, E]. */
  const perExpert = (s: ScaleSource) =>
    f32Piece(S * E, async () => {
      const v = await readFloats(ck, s.tensor);
      const out = new Float32Array(S * E);
      for (let i = 0; i < S * E; i++) out[i] = checkedScale(v[v.length === 1 ? 0 : i % E], s.tensor, s.invert);
      return out;
    });
  switch (src.encoding) {
    case 'bf16':
      return { format: 'bf16', shape, data: bufferPlan('data', slabs(src.data, K, true)) };
    case 'nvfp4': {
      const pq = src.preQuant;
      return {
        format: 'nvfp4',
        shape,
        segmentRows,
        packed: bufferPlan('packed', slabs(src.data, K / 2, false)),
        blockScale: bufferPlan('blockScale', slabs(src.blockScale, K / 16, false)),
        globalScale: bufferPlan('globalScale', [perExpert(src.global)]),
        inputScale: src.input ? bufferPlan('inputScale', [perExpert(src.input)]) : null,
        preQuantScale: pq
          ? bufferPlan('preQuantScale', [
              f32Piece(E * K, async () => {
                const v = await readFloats(ck, pq);
                return v.length === K ? Float32Array.from({ length: E * K }, (_, i) => v[i % K]) : v;
              }),
            ])
          : null,
      };
    }
    case 'fp8':
      return {
        format: 'fp8',
        shape,
        segmentRows,
        data: bufferPlan('data', slabs(src.data, K, false)),
        scale: { granularity: 'tensor' },
        scaleData: bufferPlan('scaleData', [perExpert({ tensor: src.scale, invert: false })]),
        inputScale: src.input ? bufferPlan('inputScale', [perExpert(src.input)]) : null,
      };
  }
}

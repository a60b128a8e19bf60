// The few places where the IR's scale layout differs from kernels/weight_format.ts, converted on the host (scales
// are small: at most one f32 per row or per block). Weight bytes, block scales and preScale need no conversion.
//   nvfp4 globalScale: IR [S, E] per segment (gate, up) → GPU [E, numRowGroups], equal row groups
//   fp8 scale:         IR per-tensor [S, E] / per-channel [E, N] / per-segment block grids
//                      → GPU [E, ceil(N/bn), ceil(K/bk)] with one (bn, bk) for the whole matrix
import { LoaderError } from '../core/errors.js';
import type { Fp8Tensor, Nvfp4Tensor } from './ir.js';
import { matrixDims, numExpertsOf } from './ir.js';

export interface GpuScales {
  values: Float32Array;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Rows per group such that no group straddles a segment boundary: the gcd of the segments' row counts. */
export function segmentGroupRows(segmentRows: readonly number[], alsoDivides = 0): number {
  return segmentRows.reduce((g, r) => gcd(g, r), alsoDivides);
}

/** Segment index of row `row`. */
function segmentOf(segmentRows: readonly number[], row: number): { seg: number; start: number } {
  let start = 0;
  for (let s = 0; s < segmentRows.length; s++) {
    if (row < start + segmentRows[s]) return { seg: s, start };
    start += segmentRows[s];
  }
  throw new LoaderError('DAWN_ERR_LOADER_INTERNAL', `row ${row} is past the segments ${segmentRows.join('+')}`);
}

/** NVFP4 global scales [S, E] → [E, numRowGroups]; equal segments (gate I, up I) give 2 groups. */
export function nvfp4GlobalScales(
  t: Pick<Nvfp4Tensor<unknown>, 'shape' | 'segmentRows'>,
  irValues: Float32Array,
): GpuScales & { numRowGroups: number } {
  const E = numExpertsOf(t.shape);
  const [N] = matrixDims(t.shape);
  const S = t.segmentRows.length;
  expectLength('nvfp4 globalScale', irValues, S * E);
  const groupRows = segmentGroupRows(t.segmentRows);
  const G = N / groupRows;
  const values = new Float32Array(E * G);
  for (let e = 0; e < E; e++)
    for (let j = 0; j < G; j++) values[e * G + j] = irValues[segmentOf(t.segmentRows, j * groupRows).seg * E + e];
  return { values, numRowGroups: G };
}

/** FP8 scales of any granularity → one uniform grid [E, ceil(N/bn), ceil(K/bk)] and its block (bn, bk). */
export function fp8Scales(
  t: Pick<Fp8Tensor<unknown>, 'shape' | 'segmentRows' | 'scale'>,
  irValues: Float32Array,
): GpuScales & { scaleBlock: [number, number] } {
  const E = numExpertsOf(t.shape);
  const [N, K] = matrixDims(t.shape);
  const S = t.segmentRows.length;
  const sc = t.scale;
  if (sc.granularity === 'channel') {
    expectLength('fp8 per-channel scale', irValues, E * N);
    return { values: irValues, scaleBlock: [1, K] };
  }
  if (sc.granularity === 'tensor') {
    expectLength('fp8 per-tensor scale', irValues, S * E);
    // One scale per segment: groups of gcd(segment rows) rows, each inside one segment.
    const g = segmentGroupRows(t.segmentRows);
    const G = N / g;
    const values = new Float32Array(E * G);
    for (let e = 0; e < E; e++)
      for (let j = 0; j < G; j++) values[e * G + j] = irValues[segmentOf(t.segmentRows, j * g).seg * E + e];
    return { values, scaleBlock: [g, K] };
  }
  const { blockRows: br, blockCols: bc } = sc;
  const gk = Math.ceil(K / bc);
  const segGrid = t.segmentRows.map((rows) => Math.ceil(rows / br) * gk);
  const perExpert = segGrid.reduce((a, b) => a + b, 0);
  expectLength('fp8 block scale', irValues, E * perExpert);
  // Grids restart at each segment; when every segment is a whole number of blocks (or there is one segment) the
  // concatenated grids already are the uniform grid.
  if (S === 1 || t.segmentRows.every((r) => r % br === 0)) return { values: irValues, scaleBlock: [br, bc] };
  // Otherwise use smaller row blocks that fit both the source blocks and the segments, repeating each scale.
  const bn = segmentGroupRows(t.segmentRows, br);
  const gn = N / bn;
  const values = new Float32Array(E * gn * gk);
  const segBase = segGrid.map((_, s) => segGrid.slice(0, s).reduce((a, b) => a + b, 0));
  for (let e = 0; e < E; e++) {
    for (let r = 0; r < gn; r++) {
      const { seg, start } = segmentOf(t.segmentRows, r * bn);
      const src = e * perExpert + segBase[seg] + Math.floor((r * bn - start) / br) * gk;
      values.set(irValues.subarray(src, src + gk), (e * gn + r) * gk);
    }
  }
  return { values, scaleBlock: [bn, bc] };
}

function expectLength(what: string, v: Float32Array, n: number): void {
  if (v.length !== n)
    throw new LoaderError('DAWN_ERR_LOADER_INTERNAL', `${what}: ${v.length} values in the IR, expected ${n}`);
}

// Default work split of the matvec kernel (kernels/matvec.wgsl), written for the H100 (132 SMs, subgroups of 32)
// and valid everywhere. The reasoning, and what still needs measuring on the GPU, is in docs/KERNELS.md.
//   tpk        threads along K per row group: 32 (one warp per row set, coalesced 256..2048-byte requests per load),
//              never below the subgroup size on the subgroup path (a subgroup must not straddle row groups)
//   rows       rows per thread: each x unit read from L1 is reused `rows` times; 2 keeps the x traffic at ≤ 4× the
//              weight traffic for NVFP4 at M = 1 (x f32 is 64 B per 16 k, an NVFP4 unit 8 B + 1 B of scale)
//   rowGroups  row groups per workgroup (4 → 128 threads); shrunk for small N so the grid keeps ≥ 2 workgroups
//              per SM (N = 512 k/v projections at M = 1 still get 256 workgroups)
import type { Capabilities } from './gpu/capabilities.js';
import type { WeightFormat } from './weight_format.js';

export interface MatvecTuning {
  rows: number;
  tpk: number;
  rowGroups: number;
}

/** Workgroups the default split aims for: 2 per SM of an H100. */
export const TARGET_WORKGROUPS = 264;

function pow2Ceil(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

export function defaultMatvecTuning(
  caps: Capabilities,
  o: { format: WeightFormat; N: number; K: number; mTile: number; numTiles?: number; siluMul?: boolean },
  subgroups: boolean,
): MatvecTuning {
  const units = Math.max(1, o.K / 16);
  const minTpk = subgroups ? Math.max(1, caps.subgroupMaxSize) : 1;
  const tpk = Math.max(minTpk, Math.min(32, pow2Ceil(units)));
  const minRows = o.siluMul ? 2 : 1;
  let rows = o.mTile <= 4 ? 2 : o.siluMul ? 2 : 1;
  let rowGroups = Math.max(1, Math.floor(128 / tpk));
  const outRows = o.siluMul ? o.N / 2 : o.N;
  const tiles = o.numTiles ?? 1;
  const workgroups = () => Math.ceil(outRows / ((o.siluMul ? rows / 2 : rows) * rowGroups)) * tiles;
  while (workgroups() < TARGET_WORKGROUPS && rowGroups > 1) rowGroups /= 2;
  while (workgroups() < TARGET_WORKGROUPS && rows > minRows) rows /= 2;
  return { rows, tpk, rowGroups };
}

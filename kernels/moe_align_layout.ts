// The layout kernels/moe_align.wgsl writes and the grouped GEMM reads (no GPU code here: the CPU reference uses it too).
//
// A (token, expert) pair p = token·topk + j (j-th choice of that token). The alignment groups pairs by expert and pads
// each expert's group to whole row tiles of blockM rows (vLLM's moe_align_block_size):
//   routing: u32 [maxPaddedRows + maxTiles]
//     [0, maxPaddedRows)            sorted pair index per padded row, NO_PAIR for padding rows (and past the end)
//     [maxPaddedRows, + maxTiles)   expert id of each row tile, NO_EXPERT past the last tile
//   expertOffsets: u32 [E + 1]      padded start row of each expert; [E] = total padded rows
//   counts: u32 [E]                 pairs per expert (before padding)
//   dispatchArgs: u32 [consumers][3] indirect workgroup counts (numTiles, gridN[c], 1) for each grouped GEMM

export const NO_PAIR = 0xffffffff;
export const NO_EXPERT = 0xffffffff;

export interface MoeAlignCapacity {
  maxPaddedRows: number;
  maxTiles: number;
}

/**
 * Worst-case sizes for up to `maxPairs` pairs: each of at most min(E, P) non-empty experts wastes at most blockM − 1
 * padding rows, so Σ_e ceil(c_e / blockM) ≤ floor((P + min(E, P)·(blockM − 1)) / blockM).
 */
export function moeAlignCapacity(maxPairs: number, numExperts: number, blockM: number): MoeAlignCapacity {
  const maxTiles = Math.max(1, Math.floor((maxPairs + Math.min(numExperts, maxPairs) * (blockM - 1)) / blockM));
  return { maxPaddedRows: maxTiles * blockM, maxTiles };
}

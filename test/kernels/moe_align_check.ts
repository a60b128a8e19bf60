// Router outputs for the MoE tests (moe_align, grouped GEMM): top-k expert ids per token.
import { seededRandom } from '../helpers/compare.js';

/** Per token, `topk` distinct ids drawn from `pool` (so experts outside it get no pairs). */
export function randomTopk(tokens: number, topk: number, pool: number[], seed: number): Uint32Array {
  const r = seededRandom(seed);
  const ids: number[] = [];
  for (let t = 0; t < tokens; t++) {
    const p = [...pool];
    for (let j = 0; j < topk; j++) {
      const i = j + Math.floor(r() * (p.length - j));
      [p[j], p[i]] = [p[i], p[j]];
      ids.push(p[j]);
    }
  }
  return Uint32Array.from(ids);
}

// CPU reference for kernels/embedding.wgsl.
// table: (V, H) bf16 bits · ids: (T) · returns (T, H); ids ≥ V give zero rows (the kernel's contract).
import { bf16BitsToF32 } from '../../core/float16.js';

export function embeddingRef(table: Uint16Array, ids: ArrayLike<number>, vocab: number, hidden: number): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id >= vocab) continue;
    for (let h = 0; h < hidden; h++) out[t * hidden + h] = bf16BitsToF32(table[id * hidden + h]);
  }
  return out;
}

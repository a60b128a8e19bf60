// Shared by the non-matmul kernel benchmarks: deterministic random inputs and the tolerance check of GPU outputs
// against an f64 CPU reference (all outputs or sampled ones). Lives in lib/ so `make bench-kernels` does not run it.
import type { CheckResult } from '../harness.js';

/** Uniform values in [-scale, scale), deterministic in `seed` (an LCG: fast enough for full model shapes). */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 2 * scale - scale;
  }
  return out;
}

/** Uniform integers in [0, n), deterministic in `seed`. */
export function randomInts(count: number, n: number, seed: number): Uint32Array {
  let s = (seed * 40503) >>> 0 || 1;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.floor((s / 4294967296) * n);
  }
  return out;
}

/**
 * |got[i] − ref[j]| ≤ atol + rtol·|ref[j]| for each compared pair; `index` maps a compared position to its index
 * in `got` (default: the same index as in `ref`). Reports the first mismatches and the worst fraction of tolerance.
 */
export function compareOutputs(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  o: { atol: number; rtol: number; what: string; index?: (j: number) => number },
): CheckResult {
  const bad: string[] = [];
  let worst = 0;
  let nBad = 0;
  for (let j = 0; j < ref.length; j++) {
    const i = o.index ? o.index(j) : j;
    const tol = o.atol + o.rtol * Math.abs(ref[j]);
    const err = Math.abs(got[i] - ref[j]);
    if (!(err <= tol)) {
      nBad++;
      if (bad.length < 4) bad.push(`[${i}] gpu ${got[i]} vs ref ${ref[j]}`);
    } else worst = Math.max(worst, tol > 0 ? err / tol : 0);
  }
  return nBad
    ? {
        ok: false,
        message: `${o.what}: ${nBad}/${ref.length} outside atol ${o.atol} rtol ${o.rtol}: ${bad.join('; ')}`,
      }
    : {
        ok: true,
        message: `${o.what}: ${ref.length} outputs within tolerance (worst ${(100 * worst).toFixed(1)}%)`,
      };
}

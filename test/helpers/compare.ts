// Compares kernel output with a CPU reference, llm.c style: |a - r| <= atol + rtol·|r| per element, fails on NaN/Inf,
// and reports the first mismatches with their indices plus the normalized mean squared error.

export interface CloseOptions {
  atol: number;
  rtol: number;
  name: string;
}

export interface CloseReport {
  ok: boolean;
  maxAbs: number;
  nmse: number;
  message: string;
}

export function compareClose(actual: ArrayLike<number>, ref: ArrayLike<number>, o: CloseOptions): CloseReport {
  if (actual.length !== ref.length) {
    return {
      ok: false,
      maxAbs: Number.NaN,
      nmse: Number.NaN,
      message: `${o.name}: length ${actual.length} vs reference ${ref.length}`,
    };
  }
  const bad: string[] = [];
  let numBad = 0;
  let maxAbs = 0;
  let err2 = 0;
  let ref2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = actual[i];
    const r = ref[i];
    const d = Math.abs(a - r);
    if (!Number.isFinite(a) || d > o.atol + o.rtol * Math.abs(r)) {
      numBad++;
      if (bad.length < 5) bad.push(`  at ${i}: ref ${r} vs gpu ${a}`);
    }
    if (Number.isFinite(d)) maxAbs = Math.max(maxAbs, d);
    err2 += d * d;
    ref2 += r * r;
  }
  const nmse = ref2 > 0 ? err2 / ref2 : err2;
  const message = numBad
    ? `Mismatch of ${o.name}: ${numBad}/${ref.length} elements outside atol ${o.atol} + rtol ${o.rtol}\n${bad.join('\n')}`
    : `${o.name}: max |diff| ${maxAbs.toExponential(2)}, nmse ${nmse.toExponential(2)}`;
  return { ok: numBad === 0, maxAbs, nmse, message };
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

// CPU reference for kernels/bias_act.wgsl, in f64: y = act(x + b), written back or added to h.
import type { Activation } from '../bias_act.js';

/** erf to ~1e-15: Maclaurin series below 3, the erfc continued fraction (Lentz) above. */
export function erf(v: number): number {
  const x = Math.abs(v);
  if (x < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (Math.sign(v) * sum * 2) / Math.sqrt(Math.PI);
  }
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const a = n / 2;
    d = x + a * d;
    c = x + a / c;
    d = 1 / (d === 0 ? tiny : d);
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.sign(v) * (1 - Math.exp(-x * x) / Math.sqrt(Math.PI) / f);
}

export function activationRef(act: Activation, x: number): number {
  switch (act) {
    case 'none':
      return x;
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'gelu_erf':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
  }
}

/**
 * x: (rows, cols) · b: (cols) or null · h: (rows, cols) or null. Returns act(x + b), plus h where h is given
 * (the residual variant).
 */
export function biasActRef(
  act: Activation,
  x: ArrayLike<number>,
  b: ArrayLike<number> | null,
  h: ArrayLike<number> | null,
  rows: number,
  cols: number,
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const y = activationRef(act, x[i] + (b ? b[i % cols] : 0));
    out[i] = h ? h[i] + y : y;
  }
  return out;
}

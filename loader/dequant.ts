// CPU dequantization of IR weights to f32, the reference every kernel and test compares against. Returns the
// effective W [E?, N, K] with y = x · Wᵀ; for NVFP4_AWQ the pre_quant_scale is folded in (W[n, k] · s[k]), which
// is exactly what (x ⊙ s) · Wᵀ computes.
import { bf16BytesToF32Array, bytesToF32Array, e2m1Table, e4m3Table } from './float_formats.js';
import { type IrTensor, matrixDims, numExpertsOf } from './ir.js';

export function dequantize(t: IrTensor): Float32Array {
  switch (t.format) {
    case 'bf16':
      return bf16BytesToF32Array(t.data);
    case 'nvfp4':
      return dequantNvfp4(t);
    case 'fp8':
      return dequantFp8(t);
  }
}

/** Segment index of each row (gate rows → 0, up rows → 1). */
function rowSegments(segmentRows: number[]): { seg: Int32Array; start: Int32Array } {
  const n = segmentRows.reduce((a, b) => a + b, 0);
  const seg = new Int32Array(n);
  const start = new Int32Array(n);
  let row = 0;
  segmentRows.forEach((rows, s) => {
    for (let r = 0; r < rows; r++, row++) {
      seg[row] = s;
      start[row] = row - r;
    }
  });
  return { seg, start };
}

function dequantNvfp4(t: Extract<IrTensor, { format: 'nvfp4' }>): Float32Array {
  const E = numExpertsOf(t.shape);
  const [N, K] = matrixDims(t.shape);
  const global = bytesToF32Array(t.globalScale);
  const pq = t.preQuantScale ? bytesToF32Array(t.preQuantScale) : null;
  const { seg } = rowSegments(t.segmentRows);
  const out = new Float32Array(E * N * K);
  for (let e = 0; e < E; e++) {
    for (let n = 0; n < N; n++) {
      const g = global[seg[n] * E + e];
      const row = e * N + n;
      for (let k = 0; k < K; k++) {
        const byte = t.packed[row * (K / 2) + (k >> 1)];
        const code = k & 1 ? byte >> 4 : byte & 0xf;
        let w = e2m1Table[code] * e4m3Table[t.blockScale[row * (K / 16) + (k >> 4)]] * g;
        if (pq) w *= pq[e * K + k];
        out[row * K + k] = w;
      }
    }
  }
  return out;
}

function dequantFp8(t: Extract<IrTensor, { format: 'fp8' }>): Float32Array {
  const E = numExpertsOf(t.shape);
  const [N, K] = matrixDims(t.shape);
  const S = t.segmentRows.length;
  const scale = bytesToF32Array(t.scaleData);
  const { seg, start } = rowSegments(t.segmentRows);
  const out = new Float32Array(E * N * K);
  for (let e = 0; e < E; e++) {
    // Block grids restart at each segment; segment s of expert e starts after the earlier segments' grids.
    const gridBase: number[] = [];
    if (t.scale.granularity === 'block') {
      let base = 0;
      for (let e2 = 0; e2 < E; e2++) {
        for (let s = 0; s < S; s++) {
          if (e2 === e) gridBase[s] = base;
          base += Math.ceil(t.segmentRows[s] / t.scale.blockRows) * Math.ceil(K / t.scale.blockCols);
        }
      }
    }
    for (let n = 0; n < N; n++) {
      const row = e * N + n;
      for (let k = 0; k < K; k++) {
        let s: number;
        const sc = t.scale;
        if (sc.granularity === 'tensor') s = scale[seg[n] * E + e];
        else if (sc.granularity === 'channel') s = scale[row];
        else {
          const cols = Math.ceil(K / sc.blockCols);
          const local = n - start[n];
          s = scale[gridBase[seg[n]] + Math.floor(local / sc.blockRows) * cols + Math.floor(k / sc.blockCols)];
        }
        out[row * K + k] = e4m3Table[t.data[row * K + k]] * s;
      }
    }
  }
  return out;
}

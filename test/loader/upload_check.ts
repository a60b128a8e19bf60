// Runs an uploaded weight through the grouped matvec kernel, one entry per expert, and checks it against the
// loader's CPU dequantization (loader/dequant.ts) in f64. Shared by the upload tests.
// Tolerance per output (as test/kernels/matvec*.test.ts): |gpu − ref| ≤ (K + 16)·2^-24·Σ_k|x_k·w_k| + 2^-23·|ref|.
import { expect } from 'vitest';
import { createBuffer, createBufferFrom, readF32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { Matvec, matvecVariantFor } from '../../kernels/matvec.js';
import { dequantize } from '../../loader/dequant.js';
import type { IrTensor } from '../../loader/ir.js';
import type { UploadedWeights } from '../../loader/upload.js';
import { randomArray } from '../helpers/compare.js';

/** Returns the worst |err| / tolerance. */
export async function checkExperts(g: Gpu, up: UploadedWeights, name: string, ir: IrTensor): Promise<number> {
  const w = up.weight(name);
  const { numExperts: E, N, K } = w;
  const x = randomArray(E * K, N + K, 2);
  const experts = Uint32Array.from({ length: E }, (_, e) => e);
  const kernel = await Matvec.create(
    g,
    matvecVariantFor(g, w, { act: 'f32', out: 'f32', grouped: true, numTiles: E, mTile: 1 }),
  );
  const bufs = {
    x: createBufferFrom(g, 'x', x),
    tileExperts: createBufferFrom(g, 'tileExperts', experts),
    entryRows: createBufferFrom(g, 'entryRows', experts),
    out: createBuffer(g, 'out', E * N * 4),
  };
  await runDispatches(g, [kernel.bind({ ...bufs, weight: w }, { M: E, numXRows: E })], name);
  const out = await readF32(g, bufs.out, E * N);
  for (const b of Object.values(bufs)) b.destroy();
  const W = dequantize(ir);
  let worst = 0;
  for (let e = 0; e < E; e++) {
    for (let n = 0; n < N; n++) {
      let ref = 0;
      let bound = 0;
      for (let k = 0; k < K; k++) {
        const p = W[(e * N + n) * K + k] * x[e * K + k];
        ref += p;
        bound += Math.abs(p);
      }
      const tol = (K + 16) * 2 ** -24 * bound + 2 ** -23 * Math.abs(ref);
      const err = Math.abs(out[e * N + n] - ref);
      expect(err, `${name} expert ${e} row ${n}: gpu ${out[e * N + n]} vs ref ${ref}`).toBeLessThanOrEqual(tol);
      worst = Math.max(worst, err / tol);
    }
  }
  return worst;
}

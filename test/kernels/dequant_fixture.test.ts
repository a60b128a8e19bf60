// A real ModelOpt NVFP4 tensor decoded by the GPU kernels: layer 0 q_proj [128, 128] of the tiny Qwen3-VL-MoE
// fixture (copied with its BF16 original into dequant_fixture_q_proj.safetensors from ../shared/fixtures/
// qwen3vlmoe-tiny/{nvfp4-modelopt,bf16}). The matvec (both decodes) and the tiled GEMM multiply it by the identity,
// which reads every weight back through the kernel: W[n, k] = e2m1 · e4m3(block) · global, where e2m1 · e4m3 is
// exact and the global scale multiplies once, so each value must equal fround of the f64 reference exactly.
// Against the BF16 original the mean relative L1 error Σ|W_q − W|/Σ|W| is what FP4 gives on this fixture: 8.8%..9.1%
// per parameter (test/loader/fixtures.test.ts); we require 8%..10% so a mis-scaled or mis-ordered decode fails.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32 } from '../../core/float16.js';
import { createBufferFrom } from '../../kernels/gpu/buffers.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { MatmulGemm } from '../../kernels/matmul_gemm.js';
import { Matvec, matvecVariantFor } from '../../kernels/matvec.js';
import { dequantRow, type HostWeight } from '../../kernels/reference/matvec.js';
import { destroyWeight, uploadHostWeight } from '../../kernels/reference/matvec_weights.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { readOutput, sentinelBuffer } from './matmul_gemm_check.js';

const gpu = await gpuOrSkip();

/** The tensors of a safetensors file, as byte copies. */
function readSafetensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const raw = readFileSync(path);
  const headerLen = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    out.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      bytes: Uint8Array.from(raw.subarray(8 + headerLen + a, 8 + headerLen + b)),
    });
  }
  return out;
}

const tensors = readSafetensors(new URL('./dequant_fixture_q_proj.safetensors', import.meta.url).pathname);
const [N, K] = [128, 128];
const host: HostWeight = {
  format: 'nvfp4',
  numExperts: 1,
  N,
  K,
  data: tensors.get('nvfp4.weight')!.bytes,
  blockScales: tensors.get('nvfp4.weight_scale')!.bytes,
  globalScales: new Float32Array(tensors.get('nvfp4.weight_scale_2')!.bytes.buffer),
  numRowGroups: 1,
};
const bf16Bits = new Uint16Array(tensors.get('bf16.weight')!.bytes.buffer);
const reference = new Float64Array(N * K);
for (let n = 0; n < N; n++) reference.set(dequantRow(host, 0, n), n * K);

/** x = I (K × K): output row m holds column m of Wᵀ, i.e. W[n, m] at out[m·N + n]. */
const identity = Float32Array.from({ length: K * K }, (_, i) => (Math.floor(i / K) === i % K ? 1 : 0));

function expectDecoded(got: Float32Array, what: string) {
  const bad: string[] = [];
  for (let m = 0; m < K; m++)
    for (let n = 0; n < N; n++) {
      const want = Math.fround(reference[n * K + m]);
      if (!Object.is(got[m * N + n], want) && bad.length < 5) bad.push(`W[${n}, ${m}]: ${got[m * N + n]} vs ${want}`);
    }
  expect(bad, `${what}: decoded weights differ from the reference`).toEqual([]);
}

describe('fixture tensor: ModelOpt NVFP4 q_proj vs its BF16 original', () => {
  it('the files hold what the test expects', () => {
    expect(tensors.get('nvfp4.weight')!.shape).toEqual([N, K / 2]);
    expect(tensors.get('nvfp4.weight_scale')!).toMatchObject({ dtype: 'F8_E4M3', shape: [N, K / 16] });
    expect(tensors.get('bf16.weight')!).toMatchObject({ dtype: 'BF16', shape: [N, K] });
    expect(host.globalScales![0]).toBeGreaterThan(0);
  });

  it('mean relative L1 error of the NVFP4 decode vs BF16 is FP4-sized (8%..10%)', () => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < N * K; i++) {
      const w = bf16BitsToF32(bf16Bits[i]);
      num += Math.abs(reference[i] - w);
      den += Math.abs(w);
    }
    const err = num / den;
    console.log(`q_proj NVFP4 vs BF16: mean relative L1 error ${(100 * err).toFixed(2)}%`);
    expect(err).toBeGreaterThan(0.08);
    expect(err).toBeLessThan(0.1);
  });
});

describe.skipIf(!gpu)('fixture tensor decoded on the device', () => {
  const g = gpu!;

  it('matvec, f16 decode + subgroups and arithmetic decode + workgroup reduction: every weight exact', async () => {
    const weight = uploadHostWeight(g, host, 'layers.0.self_attn.q_proj');
    const x = createBufferFrom(g, 'identity', identity);
    // the work split of matvec.test.ts (mTile 4), so the pipelines are shared with that suite
    for (const subgroups of g.caps.hasSubgroups ? [true, false] : [false]) {
      const f16Decode = subgroups && g.caps.hasF16;
      const tuning = { rows: 2, tpk: 16, rowGroups: 4 };
      const v = matvecVariantFor(g, weight, { act: 'f32', out: 'f32', subgroups, f16Decode, mTile: 4, tuning });
      const kernel = await Matvec.create(g, v);
      const y = sentinelBuffer(g, 'y', K * N, 'f32');
      await runDispatches(g, [kernel.bind({ x, weight, out: y }, { M: K })]);
      const out = await readOutput(g, y, K * N, 'f32');
      expectDecoded(out.values, kernel.name);
      expect(out.guardOk).toBe(true);
    }
    destroyWeight(weight);
  });

  it('tiled GEMM: every weight equals the reference', async () => {
    const weight = uploadHostWeight(g, host, 'layers.0.self_attn.q_proj');
    const kernel = await MatmulGemm.create(g, { format: 'nvfp4', path: 'tiled' });
    const y = sentinelBuffer(g, 'y', K * N, 'f32');
    await runDispatches(g, [kernel.bind({ x: createBufferFrom(g, 'identity', identity), weight, y }, { M: K })]);
    const out = await readOutput(g, y, K * N, 'f32');
    expectDecoded(out.values, kernel.name);
    destroyWeight(weight);
  });
});

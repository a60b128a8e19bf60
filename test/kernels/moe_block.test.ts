// The composed MoE block (kernels/moe_block.ts) vs the f64 reference (kernels/reference/moe_block.ts) with nvfp4 and
// bf16 experts, E = 8..13, k = 2..8, H and I odd multiples of 16, T = 1, 3, 40 through the decode path (grouped
// matvecs) and the prefill path (MoeAlign + grouped GEMMs), with the residual separate or added in place.
// Routing: the GPU's expert ids are read back and must equal the reference's wherever the reference probabilities
// differ by more than the f32 error bound (see test/kernels/moe_router.test.ts); the reference output is then
// evaluated with the GPU's ids. Tolerance per output: |gpu − ref| ≤ 2·bound + 1e-6, bound = the first-order f32
// error bound the reference propagates through router, gate_up, silu·up, down and the weighted sum (f16 operand
// rounding included where the prefill GEMM uses tensor cores). Rows past T and a guard region must stay untouched.
// decodeRmsNorm: the block gets un-normed rows and the norm weight (eps 1e-6), the reference the f64 RMSNorm of
// them; the in-kernel norm's f32 error (≤ (H/2·2^-24 + 2^-20) relative per x) stays within the same 2·bound.
import { describe, expect, it } from 'vitest';
import { createBuffer, createBufferFrom, readBuffer, readU32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { runDispatches } from '../../kernels/gpu/dispatch.js';
import { MoeBlock, type MoeBlockWeights } from '../../kernels/moe_block.js';
import { type MoeBlockHost, moeBlockRef } from '../../kernels/reference/moe_block.js';
import { rmsNormRef } from '../../kernels/reference/rms_norm.js';
import { dequantHostWeight, randomHostWeight, uploadHostWeight } from '../../kernels/reference/gemm_weights.js';
import type { WeightFormat } from '../../kernels/weight_format.js';
import { randomArray } from '../helpers/compare.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const SENTINEL = 0x7eadbeef;
const GUARD = 16; // f32 words after the output

interface Model {
  host: MoeBlockHost;
  weights: MoeBlockWeights;
}

function makeModel(
  g: Gpu,
  format: WeightFormat,
  E: number,
  k: number,
  H: number,
  I: number,
  norm: boolean,
  salt = 0,
  preScale = false,
): Model {
  const seed = E * 31 + k * 7 + H + I + salt * 1009;
  const router = randomHostWeight('bf16', E, H, { seed });
  const gateUp = randomHostWeight(format, 2 * I, H, {
    numExperts: E,
    numRowGroups: format === 'nvfp4' ? 2 : undefined,
    scaleBlock: format === 'fp8' ? [16, 32] : undefined,
    preScale,
    seed: seed + 1,
  });
  const down = randomHostWeight(format, H, I, {
    numExperts: E,
    scaleBlock: format === 'fp8' ? [16, 32] : undefined,
    preScale,
    seed: seed + 2,
  });
  return {
    host: {
      E,
      H,
      I,
      topK: k,
      normTopk: norm,
      router: dequantHostWeight(router),
      gateUp: dequantHostWeight(gateUp),
      down: dequantHostWeight(down),
      gateUpPreScale: gateUp.preScale,
      downPreScale: down.preScale,
    },
    weights: {
      router: uploadHostWeight(g, 'mlp.gate', router),
      gateUp: uploadHostWeight(g, 'mlp.experts.gate_up_proj', gateUp),
      down: uploadHostWeight(g, 'mlp.experts.down_proj', down),
    },
  };
}

describe.skipIf(!gpu)('moe_block', () => {
  const g = gpu!;

  /** Runs T tokens through a block bound for maxTokens and checks everything the header promises. */
  async function check(
    m: Model,
    o: {
      T: number;
      maxTokens: number;
      maxDecodeTokens: number;
      inPlace: boolean;
      path: 'decode' | 'prefill';
      fusedDown?: boolean;
      decodeRouter?: 'fused' | 'matvec';
      decodeRmsNorm?: boolean;
    },
  ) {
    const { H, E, topK: k } = m.host;
    const { T, maxTokens } = o;
    const fused =
      (o.fusedDown === false ? ' unfused' : '') +
      (o.decodeRouter === 'fused' ? ' fused router' : '') +
      (o.decodeRmsNorm ? ' rms_norm' : '');
    const name = `${m.weights.down.format} E=${E} k=${k} H=${H} I=${m.host.I} T=${T} ${o.path}${fused}${o.inPlace ? ' in place' : ''}`;
    const block = await MoeBlock.create(g, m.weights, {
      topK: k,
      normTopk: m.host.normTopk,
      maxDecodeTokens: o.maxDecodeTokens,
      fusedDown: o.fusedDown,
      inPlace: o.inPlace,
      decodeRouter: o.decodeRouter,
      decodeRmsNorm: o.decodeRmsNorm,
    });
    const scratch = block.createScratch(maxTokens);
    const rawX = randomArray(maxTokens * H, T * 13 + H, 1);
    const eps = 1e-6;
    const normW = randomArray(H, H + 5, 1);
    const x = o.decodeRmsNorm ? rmsNormRef(rawX, normW, maxTokens, H, eps) : rawX;
    const residual = randomArray(maxTokens * H, T * 17 + H, 4);
    const init = new Uint32Array(maxTokens * H + GUARD).fill(SENTINEL);
    if (o.inPlace) init.set(new Uint32Array(residual.buffer));
    const out = createBuffer(g, 'h', init.byteLength);
    g.queue.writeBuffer(out, 0, init);
    const binding = block.bind({
      x: createBufferFrom(g, 'x', Float32Array.from(x)),
      norm: o.decodeRmsNorm
        ? { x: createBufferFrom(g, 'raw_x', rawX), weight: createBufferFrom(g, 'norm_w', normW), eps }
        : undefined,
      out,
      residual: o.inPlace ? undefined : createBufferFrom(g, 'residual', residual),
      scratch,
    });
    expect(binding.pathFor(T), name).toBe(o.path);
    const d = binding.forTokens(T);
    const decodeCount = 3 + (o.fusedDown === false ? 1 : 0) + (o.decodeRouter === 'fused' ? 0 : 1);
    expect(d.count, `${name}: dispatches`).toBe(o.path === 'prefill' ? 7 : decodeCount);
    await runDispatches(g, [d]);

    const ids = await readU32(g, scratch.topkIds, T * k);
    const ref = moeBlockRef(m.host, x, residual, T, ids, {
      f16Operands: o.path === 'prefill' && block.gemmPath !== 'tiled',
    });
    // the GPU's routing: valid, and the reference's own choice up to f32-close probabilities
    const plain = moeBlockRef(m.host, x, residual, T);
    for (let t = 0; t < T; t++) {
      const got = Array.from(ids.subarray(t * k, (t + 1) * k));
      expect(new Set(got).size, `${name} token ${t}: ids ${got}`).toBe(k);
      for (let j = 0; j < k; j++) {
        const [a, b] = [got[j], plain.ids[t * k + j]];
        expect(a, `${name} token ${t}: id ${a}`).toBeLessThan(E);
        if (a !== b) {
          const [pa, pb] = [ref.probs[t * E + a], ref.probs[t * E + b]];
          expect(Math.abs(pa - pb) <= 1e-5 * pb && pa !== pb, `${name} token ${t} rank ${j}: ${a} vs ${b}`).toBe(true);
        }
      }
    }
    const raw = new Float32Array(await readBuffer(g, out));
    const bad: string[] = [];
    let worst = 0;
    for (let i = 0; i < T * H; i++) {
      const diff = Math.abs(raw[i] - ref.out[i]);
      const tol = 2 * ref.bound[i] + 1e-6;
      worst = Math.max(worst, diff / tol);
      if (!(diff <= tol) && bad.length < 5) bad.push(`at ${i}: gpu ${raw[i]} ref ${ref.out[i]} tol ${tol}`);
    }
    expect(bad, `${name}: outside the bound (worst ${worst.toFixed(3)} of it)\n${bad.join('\n')}`).toEqual([]);
    const after = new Uint32Array(raw.buffer, T * H * 4);
    const expectAfter = init.subarray(T * H);
    expect(
      after.every((v, i) => v === expectAfter[i]),
      `${name}: rows past T or the guard were written`,
    ).toBe(true);
  }

  it('nvfp4 experts (gate_up with 2 global scales), E=13 k=8 H=48 I=80: T = 1, 3 decode; 3, 40 prefill', async () => {
    const m = makeModel(g, 'nvfp4', 13, 8, 48, 80, true);
    for (const T of [1, 3]) await check(m, { T, maxTokens: 40, maxDecodeTokens: 4, inPlace: false, path: 'decode' });
    await check(m, { T: 3, maxTokens: 40, maxDecodeTokens: 4, inPlace: false, path: 'decode', fusedDown: false });
    for (const T of [1, 3])
      await check(m, { T, maxTokens: 40, maxDecodeTokens: 4, inPlace: false, path: 'decode', decodeRouter: 'fused' });
    for (const T of [3, 40]) await check(m, { T, maxTokens: 40, maxDecodeTokens: 1, inPlace: false, path: 'prefill' });
  });

  it('decodeRmsNorm: the norm inside the logits and gate_up matvecs (nvfp4 E=13 k=8 H=48 I=80, bf16 E=8 k=2 H=80 I=48)', async () => {
    const m = makeModel(g, 'nvfp4', 13, 8, 48, 80, true);
    for (const T of [1, 3])
      await check(m, { T, maxTokens: 5, maxDecodeTokens: 4, inPlace: true, path: 'decode', decodeRmsNorm: true });
    const b = makeModel(g, 'bf16', 8, 2, 80, 48, true);
    await check(b, { T: 3, maxTokens: 5, maxDecodeTokens: 4, inPlace: false, path: 'decode', decodeRmsNorm: true });
    // prefill still reads the normed x
    await check(b, { T: 5, maxTokens: 5, maxDecodeTokens: 4, inPlace: true, path: 'prefill', decodeRmsNorm: true });
    const block = await MoeBlock.create(g, b.weights, { topK: 2, normTopk: true, decodeRmsNorm: true });
    const buf = createBuffer(g, 'buf', 4 * 80 * 4);
    expect(() => block.bind({ x: buf, out: buf, scratch: block.createScratch(4) })).toThrow(/needs norm/);
    await expect(
      MoeBlock.create(g, b.weights, { topK: 2, normTopk: true, decodeRmsNorm: true, decodeRouter: 'fused' }),
    ).rejects.toThrow(/decodeRmsNorm needs decodeRouter 'matvec'/);
  });

  it('bf16 experts, E=8 k=2 H=80 I=48, in place: T = 1, 3, 40 decode; 40 prefill', async () => {
    const m = makeModel(g, 'bf16', 8, 2, 80, 48, true);
    for (const T of [1, 3, 40])
      await check(m, { T, maxTokens: 40, maxDecodeTokens: 40, inPlace: true, path: 'decode' });
    await check(m, {
      T: 3,
      maxTokens: 40,
      maxDecodeTokens: 8,
      inPlace: true,
      path: 'decode',
      fusedDown: false,
      decodeRouter: 'fused',
    });
    await check(m, { T: 40, maxTokens: 40, maxDecodeTokens: 8, inPlace: true, path: 'prefill' });
  });

  it('nvfp4 experts without norm_topk_prob, E=10 k=4 H=112 I=48: T = 3 decode and prefill', async () => {
    const m = makeModel(g, 'nvfp4', 10, 4, 112, 48, false);
    await check(m, { T: 3, maxTokens: 5, maxDecodeTokens: 8, inPlace: true, path: 'decode' });
    await check(m, { T: 3, maxTokens: 5, maxDecodeTokens: 0, inPlace: false, path: 'prefill' });
  });

  it('fp8 (16×32 scale blocks) and f32 experts, E=9 k=3 H=48 I=64: T = 1, 3 decode; 3 prefill', async () => {
    for (const format of ['fp8', 'f32'] as WeightFormat[]) {
      const m = makeModel(g, format, 9, 3, 48, 64, true);
      for (const T of [1, 3]) await check(m, { T, maxTokens: 3, maxDecodeTokens: 3, inPlace: T === 1, path: 'decode' });
      await check(m, { T: 3, maxTokens: 3, maxDecodeTokens: 0, inPlace: false, path: 'prefill' });
    }
  });

  it("the full model's expert count: nvfp4, E=128 k=8 H=48 I=32: T = 1 decode, 40 prefill", async () => {
    const m = makeModel(g, 'nvfp4', 128, 8, 48, 32, true);
    await check(m, { T: 1, maxTokens: 40, maxDecodeTokens: 1, inPlace: true, path: 'decode' });
    await check(m, { T: 40, maxTokens: 40, maxDecodeTokens: 1, inPlace: true, path: 'prefill' });
  });

  it('AWQ preScale weights: decode (matvec down fallback) and prefill', async () => {
    const m = makeModel(g, 'nvfp4', 8, 2, 32, 32, true, 3, true);
    await check(m, { T: 3, maxTokens: 5, maxDecodeTokens: 3, inPlace: true, path: 'decode', fusedDown: false });
    await check(m, { T: 5, maxTokens: 5, maxDecodeTokens: 1, inPlace: true, path: 'prefill' });
  });

  it('two layers share one scratch in one pass (decode T = 2, then prefill T = 40)', async () => {
    const [E, k, H, I] = [11, 4, 48, 32];
    const layers = [makeModel(g, 'nvfp4', E, k, H, I, true, 1), makeModel(g, 'nvfp4', E, k, H, I, true, 2)];
    const blocks = await Promise.all(
      layers.map((m) => MoeBlock.create(g, m.weights, { topK: k, normTopk: true, maxDecodeTokens: 2 })),
    );
    const scratch = blocks[0].createScratch(40);
    for (const T of [2, 40]) {
      const xs = [randomArray(40 * H, T + 1, 1), randomArray(40 * H, T + 2, 1)];
      const h0 = randomArray(40 * H, T + 3, 4);
      const h = createBufferFrom(g, 'h', h0);
      const ds = blocks.map((b, l) => b.bind({ x: createBufferFrom(g, `x${l}`, xs[l]), out: h, scratch }).forTokens(T));
      await runDispatches(g, ds);
      const out = new Float32Array(await readBuffer(g, h, 0, T * H * 4));
      // layer 1 adds onto layer 0's output; both reference terms use their own routing (decisive at these seeds)
      const r0 = moeBlockRef(layers[0].host, xs[0], h0, T);
      const r1 = moeBlockRef(layers[1].host, xs[1], r0.out, T);
      const bad = Array.from(out).findIndex(
        (v, i) => !(Math.abs(v - r1.out[i]) <= 2 * (r0.bound[i] + r1.bound[i]) + 1e-6),
      );
      expect(bad, `T=${T}: first mismatch at ${bad}: gpu ${out[bad]} ref ${r1.out[bad]}`).toBe(-1);
    }
  });

  it('rejects mismatched weights, scratch of another shape and too many tokens', async () => {
    const m = makeModel(g, 'bf16', 8, 2, 48, 32, true);
    await expect(
      MoeBlock.create(g, { ...m.weights, down: { ...m.weights.down, K: 48 } }, { topK: 2, normTopk: true }),
    ).rejects.toThrow(/down mlp\.experts\.down_proj is \[8, 48, 48\], expected \[8, 48, 32\]/);
    await expect(MoeBlock.create(g, m.weights, { topK: 9, normTopk: true })).rejects.toThrow(/top-k 9 must be 1\.\.E/);
    const block = await MoeBlock.create(g, m.weights, { topK: 2, normTopk: true });
    const other = await MoeBlock.create(g, makeModel(g, 'bf16', 8, 4, 48, 32, true).weights, {
      topK: 4,
      normTopk: true,
    });
    const buf = createBuffer(g, 'buf', 4 * 48 * 4);
    expect(() => block.bind({ x: buf, out: buf, scratch: other.createScratch(4) })).toThrow(/was made for .*k 4/);
    const binding = block.bind({ x: buf, out: buf, scratch: block.createScratch(4) });
    expect(() => binding.forTokens(5)).toThrow(/5 tokens, the scratch holds 1\.\.4/);
    expect(() => block.bind({ x: buf, out: buf, residual: buf, scratch: block.createScratch(4) })).toThrow(
      /adds in place into out/,
    );
    expect(() => block.bind({ x: buf, out: buf, scratch: block.createScratch(5) })).toThrow(
      /x has 768 bytes, expected at least 960/,
    );
  });
});

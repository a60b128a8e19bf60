// Every fixture checkpoint of the tiny Qwen3-VL-MoE loads through the same rules into the same IR.
// Bounds (stated, from the fixtures' own quantization): dequantized NVFP4 weights sit at a mean relative L1 error
// Σ|W_q − W_bf16| / Σ|W_bf16| of 8.95% from the BF16 checkpoint (E2M1 has 3 magnitude bits; 8.8%..9.1% per
// parameter), FP8 block weights at 2.25%. We require 8.5%..9.5% overall and 5%..10% per quantized parameter for
// NVFP4, 1.5%..3% overall and 1%..3% per parameter for FP8, so a loader that silently fell back to BF16 (0%) or
// mis-scaled a block (far above) fails. NVFP4 directories must produce byte-identical weight IR (packed,
// blockScale, globalScale), hence exactly equal dequantized weights. The activation input scales (used only by
// W4A4 kernels) agree to 1 ulp: compressed-tensors stores their f32 reciprocal, and 1 / fround(1 / s) does not
// always round back to s.
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../loader/dequant.js';
import { bytesToF32Array } from '../../loader/float_formats.js';
import { type IrTensor, irBuffers } from '../../loader/ir.js';
import { fixtureOrSkip, loadDir, reportFor } from './load_helpers.js';

const root = 'qwen3vlmoe-tiny';
const bf16Dir = fixtureOrSkip(`${root}/bf16`);
const nvfp4Dirs = ['nvfp4-modelopt', 'nvfp4-modelopt-indexfirst', 'nvfp4-seednames', 'nvfp4-ct'];

type Weights = Map<string, IrTensor>;
const cache = new Map<string, Promise<Weights>>();
function weightsOf(dir: string): Promise<Weights> {
  if (!cache.has(dir))
    cache.set(
      dir,
      loadDir(dir).then((r) => r.weights),
    );
  return cache.get(dir)!;
}

function l1Sums(a: Float32Array, b: Float32Array): { num: number; den: number } {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += Math.abs(a[i] - b[i]);
    den += Math.abs(b[i]);
  }
  return { num, den };
}

/**
 * Σ|W_q − W_bf16| / Σ|W_bf16| over every quantized parameter (each checked against `perParam`), and the per-parameter
 * range; printed so the numbers behind the bounds stay visible.
 */
function quantError(what: string, w: Weights, ref: Weights, perParam: [number, number]) {
  let num = 0;
  let den = 0;
  let min = Infinity;
  let max = 0;
  let n = 0;
  for (const [name, t] of w) {
    if (t.format === 'bf16') continue;
    const s = l1Sums(dequantize(t), dequantize(ref.get(name)!));
    const err = s.num / s.den;
    expect(err, name).toBeGreaterThan(perParam[0]);
    expect(err, name).toBeLessThan(perParam[1]);
    num += s.num;
    den += s.den;
    min = Math.min(min, err);
    max = Math.max(max, err);
    n++;
  }
  const mean = num / den;
  console.log(
    `${what}: mean relative L1 error ${(100 * mean).toFixed(2)}% over ${n} quantized parameters (per parameter ${(100 * min).toFixed(2)}%..${(100 * max).toFixed(2)}%)`,
  );
  return { mean, n };
}

function expectSameIr(a: Weights, b: Weights, what: string): void {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u.format, `${what}: ${name}`).toBe(t.format);
    expect(u.shape, `${what}: ${name}`).toEqual(t.shape);
    const bu = irBuffers(u);
    for (const [i, [bufName, bytes]] of irBuffers(t).entries()) {
      expect(bu[i][0]).toBe(bufName);
      const where = `${what}: ${name}.${bufName}`;
      if (bufName !== 'inputScale') {
        expect(Buffer.compare(Buffer.from(bu[i][1]), Buffer.from(bytes)), where).toBe(0);
        continue;
      }
      const x = bytesToF32Array(bytes);
      const y = bytesToF32Array(bu[i][1]);
      x.forEach((v, j) => expect(Math.abs(y[j] - v), where).toBeLessThanOrEqual(Math.abs(v) * 2 ** -23));
    }
    // Byte-identical packed/blockScale/globalScale buffers make the dequantized weights exactly equal.
  }
}

describe.skipIf(!bf16Dir)('tiny fixture, bf16 (transformers 5 layout)', () => {
  it('consumes every tensor and fills every parameter as BF16', async () => {
    const report = await reportFor(bf16Dir!);
    expect(report.problems).toEqual([]);
    expect(report.tensors.every((t) => t.status === 'consumed')).toBe(true);
    expect(report.params.every((p) => p.format === 'bf16')).toBe(true);
    expect(report.totals.irBytes).toBe(report.totals.checkpointBytes);
    const experts = report.params.find((p) => p.name.endsWith('layers.0.mlp.experts.gate_up_proj'))!;
    expect(experts.shape).toEqual([8, 192, 128]);
    expect(experts.layout).toBe('BF16 fused [E, N, K]');
  });
});

const hubDir = fixtureOrSkip(`${root}/bf16-hub`);
describe.skipIf(!bf16Dir || !hubDir)('tiny fixture, bf16-hub ([E,H,2I] experts, Hub config spelling)', () => {
  it('transposes the fused experts into byte-identical IR', async () => {
    const report = await reportFor(hubDir!);
    expect(report.problems).toEqual([]);
    expect(report.params.find((p) => p.name.endsWith('layers.0.mlp.experts.down_proj'))!.layout).toBe(
      'BF16 fused [E, K, N] (transposed at load)',
    );
    expectSameIr(await weightsOf(bf16Dir!), await weightsOf(hubDir!), 'bf16-hub vs bf16');
  });
});

const modeloptDir = fixtureOrSkip(`${root}/nvfp4-modelopt`);
describe.skipIf(!modeloptDir || !bf16Dir)('tiny fixture, nvfp4-modelopt', () => {
  it('quantizes attention and experts, keeps the rest BF16, consumes every tensor', async () => {
    const report = await reportFor(modeloptDir!);
    expect(report.problems).toEqual([]);
    expect(report.format).toMatch(/ModelOpt NVFP4/);
    expect(report.tensors.filter((t) => t.status !== 'consumed')).toEqual([]);
    const nvfp4 = report.params.filter((p) => p.format === 'nvfp4').map((p) => p.name.split('.').slice(-2).join('.'));
    expect(nvfp4).toHaveLength(4 * 6);
    expect(new Set(nvfp4)).toEqual(
      new Set([
        'q_proj.weight',
        'k_proj.weight',
        'v_proj.weight',
        'o_proj.weight',
        'experts.gate_up_proj',
        'experts.down_proj',
      ]),
    );
  });

  it('keeps gate and up global scales apart, [E] each, multiplying', async () => {
    const w = await weightsOf(modeloptDir!);
    const t = w.get('model.language_model.layers.0.mlp.experts.gate_up_proj')!;
    if (t.format !== 'nvfp4') throw new Error('expected nvfp4');
    expect(t.shape).toEqual([8, 192, 128]);
    expect(t.segmentRows).toEqual([96, 96]);
    expect(t.packed.byteLength).toBe(8 * 192 * 64);
    expect(t.blockScale.byteLength).toBe(8 * 192 * 8);
    expect(t.globalScale.byteLength).toBe(2 * 8 * 4);
  });

  it('dequantizes within the FP4 error of the BF16 checkpoint', async () => {
    const ref = await weightsOf(bf16Dir!);
    const w = await weightsOf(modeloptDir!);
    for (const [name, t] of w)
      if (t.format === 'bf16')
        expect(Buffer.compare(Buffer.from(t.data), Buffer.from((ref.get(name) as { data: Uint8Array }).data))).toBe(0);
    const { mean, n } = quantError('nvfp4-modelopt vs bf16', w, ref, [0.05, 0.1]);
    expect(n).toBe(4 * 6);
    expect(mean).toBeGreaterThan(0.085);
    expect(mean).toBeLessThan(0.095);
  });
});

for (const variant of nvfp4Dirs.slice(1)) {
  const dir = fixtureOrSkip(`${root}/${variant}`);
  describe.skipIf(!dir || !modeloptDir)(`tiny fixture, ${variant}`, () => {
    it('loads with every tensor consumed and yields IR byte-identical to nvfp4-modelopt', async () => {
      const report = await reportFor(dir!);
      expect(report.problems).toEqual([]);
      expect(report.tensors.filter((t) => t.status !== 'consumed')).toEqual([]);
      const a = await weightsOf(modeloptDir!);
      const b = await weightsOf(dir!);
      expectSameIr(a, b, `${variant} vs nvfp4-modelopt`);
      const name = 'model.language_model.layers.3.mlp.experts.gate_up_proj';
      expect(dequantize(b.get(name)!)).toEqual(dequantize(a.get(name)!));
    });
  });
}

const fp8Dir = fixtureOrSkip(`${root}/fp8-block`);
describe.skipIf(!fp8Dir || !bf16Dir)('tiny fixture, fp8-block (weight_scale_inv)', () => {
  it('loads block-scaled FP8 with grids restarting at the gate/up boundary and matches BF16 within FP8 error', async () => {
    const report = await reportFor(fp8Dir!);
    expect(report.problems).toEqual([]);
    const ref = await weightsOf(bf16Dir!);
    const w = await weightsOf(fp8Dir!);
    const gateUp = w.get('model.language_model.layers.1.mlp.experts.gate_up_proj')!;
    if (gateUp.format !== 'fp8') throw new Error('expected fp8');
    expect(gateUp.scale).toEqual({ granularity: 'block', blockRows: 128, blockCols: 128 });
    expect(gateUp.scaleData.byteLength).toBe(8 * 2 * 1 * 1 * 4); // [E, S, ceil(96/128), ceil(128/128)]
    const { mean, n } = quantError('fp8-block vs bf16', w, ref, [0.01, 0.03]);
    expect(n).toBe(4 * 6);
    expect(mean).toBeGreaterThan(0.015);
    expect(mean).toBeLessThan(0.03);
  });
});

const arith = fixtureOrSkip('qwen3vlmoe-arith/nvfp4-modelopt');
const arithBf16 = fixtureOrSkip('qwen3vlmoe-arith/bf16');
describe.skipIf(!arith || !arithBf16)('arith model (single-file checkpoints)', () => {
  it('loads bf16 and nvfp4-modelopt and agrees within FP4 error', async () => {
    expect((await reportFor(arith!)).problems).toEqual([]);
    const ref = (await loadDir(arithBf16!)).weights;
    const w = (await loadDir(arith!)).weights;
    const { n } = quantError('arith nvfp4-modelopt vs bf16', w, ref, [0.05, 0.1]);
    expect(n).toBe(4 * 6);
  });
});

// Uploads fixture checkpoints through loader/upload.ts and checks the GPU bytes against the host IR: weight bytes
// and block scales byte-identical, dense norms widened to f32 exactly, NVFP4 global scales transposed [S, E] →
// [E, 2], FP8 block scales in kernels/weight_format.ts's grid. Then runs uploaded expert stacks through the grouped
// matvec kernel against the loader's CPU dequantization (upload_check.ts states the tolerance).
import { describe, expect, it } from 'vitest';
import { readBuffer, readF32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import { bf16BytesToF32Array, bytesToF32Array } from '../../loader/float_formats.js';
import { planLoad } from '../../loader/load_plan.js';
import type { ProgressState } from '../../loader/progress.js';
import { loadCheckpointToGpu, type UploadedWeights, uploadCheckpoint } from '../../loader/upload.js';
import { gpuOrSkip } from '../helpers/gpu.js';
import { fixtureOrSkip, loadDir, specFor } from './load_helpers.js';
import { checkExperts } from './upload_check.js';

const gpu = await gpuOrSkip();
const T = 'model.language_model';
const bf16Dir = fixtureOrSkip('qwen3vlmoe-tiny/bf16');
const nvfp4Dir = fixtureOrSkip('qwen3vlmoe-tiny/nvfp4-modelopt');
const fp8Dir = fixtureOrSkip('qwen3vlmoe-tiny/fp8-block');

async function bytesOf(g: Gpu, buffer: GPUBuffer, n: number): Promise<Uint8Array> {
  return new Uint8Array(await readBuffer(g, buffer, 0, n));
}

function expectBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  expect(actual.byteLength, what).toBe(expected.byteLength);
  expect(Buffer.compare(Buffer.from(actual), Buffer.from(expected)), what).toBe(0);
}

describe.skipIf(!gpu)('upload to GPU', () => {
  const g = gpu!;

  it.skipIf(!nvfp4Dir)('nvfp4-modelopt: buffers equal the IR, experts match the CPU dequant', async () => {
    const { weights } = await loadDir(nvfp4Dir!);
    const progress: ProgressState[] = [];
    // Odd piece sizes force the writer to carry partial words between pieces.
    const up = await loadCheckpointToGpu(g, nvfp4Dir!, await specFor(nvfp4Dir!), {
      progress: 'none',
      maxPieceBytes: 1001,
      onProgress: (s) => progress.push(s),
    });
    try {
      expect(up.params.size).toBe(weights.size);
      const last = progress[progress.length - 1];
      expect(last.doneBytes).toBe(last.totalBytes);
      expect(progress.every((s, i) => i === 0 || s.doneBytes >= progress[i - 1].doneBytes)).toBe(true);

      const gu = `${T}.layers.1.mlp.experts.gate_up_proj`;
      const ir = weights.get(gu)!;
      if (ir.format !== 'nvfp4') throw new Error(`${gu} is ${ir.format}`);
      const w = up.weight(gu);
      expect([w.format, w.numExperts, w.N, w.K, w.numRowGroups]).toEqual(['nvfp4', 8, 192, 128, 2]);
      expectBytes(await bytesOf(g, w.data, ir.packed.byteLength), ir.packed, `${gu}.data`);
      expectBytes(await bytesOf(g, w.blockScales!, ir.blockScale.byteLength), ir.blockScale, `${gu}.blockScales`);
      const irGlobal = bytesToF32Array(ir.globalScale); // [S=2, E]
      const gpuGlobal = await readF32(g, w.globalScales!, 16); // [E, 2]
      for (let e = 0; e < 8; e++)
        for (let s = 0; s < 2; s++) expect(gpuGlobal[e * 2 + s], `expert ${e} segment ${s}`).toBe(irGlobal[s * 8 + e]);

      const norm = `${T}.layers.0.input_layernorm.weight`;
      const d = up.dense(norm);
      expect([d.format, d.shape]).toEqual(['f32', [128]]);
      expect(await readF32(g, d.buffer, 128)).toEqual(
        bf16BytesToF32Array((weights.get(norm) as { data: Uint8Array }).data),
      );

      const emb = `${T}.embed_tokens.weight`;
      expect(up.dense(emb).format).toBe('bf16');
      const embIr = (weights.get(emb) as { data: Uint8Array }).data;
      expectBytes(await bytesOf(g, up.buffer(emb), embIr.byteLength), embIr, emb);
      expect(up.weight(emb).N).toBe(2048); // a 2-D dense table viewed as a [V, H] bf16 weight (tied lm_head)
      expect(() => up.dense(gu)).toThrow(/is a nvfp4 weight/);
      expect(() => up.weight('nope')).toThrow(/"nope" was not uploaded/);

      const wDown = await checkExperts(
        g,
        up,
        `${T}.layers.1.mlp.experts.down_proj`,
        weights.get(`${T}.layers.1.mlp.experts.down_proj`)!,
      );
      const wGu = await checkExperts(g, up, gu, ir);
      console.log(`nvfp4 experts through matvec: worst |err| / tol = ${Math.max(wDown, wGu).toFixed(3)}`);
    } finally {
      up.destroy();
    }
  });

  it.skipIf(!bf16Dir)('bf16, text only: fused experts and linears equal the IR; load time is logged', async () => {
    const { weights } = await loadDir(bf16Dir!);
    const plan = await planLoad(bf16Dir!, await specFor(bf16Dir!));
    let up: UploadedWeights;
    try {
      up = await uploadCheckpoint(g, plan, { progress: 'none', include: (spec) => spec.group === 'text' });
    } finally {
      await plan.checkpoint.close();
    }
    try {
      console.log(`bf16 tiny fixture uploaded: ${up.gpuBytes} bytes in ${up.loadMs.toFixed(0)} ms`);
      expect(up.loadMs).toBeGreaterThan(0);
      expect(up.params.size).toBe([...weights.keys()].filter((n) => !n.startsWith('model.visual.')).length);
      expect(up.has('model.visual.pos_embed.weight')).toBe(false);
      for (const name of [
        `${T}.layers.0.self_attn.q_proj.weight`,
        `${T}.layers.2.mlp.experts.gate_up_proj`,
        'lm_head.weight',
      ]) {
        const ir = weights.get(name)!;
        if (ir.format !== 'bf16') throw new Error(`${name} is ${ir.format}`);
        const w = up.weight(name);
        expect(w.format).toBe('bf16');
        expectBytes(await bytesOf(g, w.data, ir.data.byteLength), ir.data, name);
      }
      const dn = `${T}.layers.3.mlp.experts.down_proj`;
      await checkExperts(g, up, dn, weights.get(dn)!);
    } finally {
      up.destroy();
    }
  });

  it.skipIf(!fp8Dir)('fp8-block: block scales in the GPU grid; experts match the CPU dequant', async () => {
    const { weights } = await loadDir(fp8Dir!);
    const up = await loadCheckpointToGpu(g, fp8Dir!, await specFor(fp8Dir!), { progress: 'none' });
    try {
      const gu = `${T}.layers.1.mlp.experts.gate_up_proj`;
      const w = up.weight(gu);
      expect(w.format).toBe('fp8');
      // gate and up (96 rows each) were blocked separately with 128-row blocks: 32-row GPU blocks fit both
      expect(w.scaleBlock).toEqual([32, 128]);
      await checkExperts(g, up, gu, weights.get(gu)!);
      const q = `${T}.layers.0.self_attn.q_proj.weight`;
      await checkExperts(g, up, q, weights.get(q)!);
    } finally {
      up.destroy();
    }
  });

  it.skipIf(!nvfp4Dir)(
    'a checkpoint with problems fails with the load report before any GPU buffer exists',
    async () => {
      const spec = await specFor(nvfp4Dir!);
      const broken = { ...spec, params: [...spec.params, { ...spec.params[1], name: 'extra.weight' }] };
      await expect(loadCheckpointToGpu(g, nvfp4Dir!, broken, { progress: 'none' })).rejects.toThrow(
        /"extra.weight".*nothing was uploaded|nothing was uploaded[\s\S]*extra.weight/,
      );
    },
  );
});

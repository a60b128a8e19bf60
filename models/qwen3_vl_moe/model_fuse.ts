// Stacks the rows of several uploaded linear weights that share one input (q, k, v) into one GpuWeight, so the
// forward runs one projection into one [q | k | v] token row that the rope and attention kernels read in place.
// Weight bytes and NVFP4 block scales are row-major, so rows concatenate as bytes (GPU copies); the small
// per-matrix scales (NVFP4 global scales, FP8 scale grids) are read back and rebuilt on the host for the stack.
import { ModelError } from '../../core/errors.js';
import { createBuffer, createBufferFrom, readF32 } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { GpuWeight, WeightFormat } from '../../kernels/weight_format.js';

const dataBytesPerElement: Record<WeightFormat, number> = { f32: 4, bf16: 2, nvfp4: 0.5, fp8: 1 };

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function fail(label: string, message: string): never {
  throw new ModelError('DAWN_ERR_MODEL_FUSE', `${label}: cannot stack ${message}`);
}

/** Copies each part's first `bytes[i]` bytes of `pick(part)` back to back into one new buffer. */
function concatBuffers(gpu: Gpu, label: string, parts: GPUBuffer[], bytes: number[]): GPUBuffer {
  const total = bytes.reduce((a, b) => a + b, 0);
  const out = createBuffer(gpu, label, total);
  const encoder = gpu.device.createCommandEncoder({ label });
  let offset = 0;
  parts.forEach((b, i) => {
    if (bytes[i] % 4 || offset % 4) fail(label, `${b.label}: ${bytes[i]} bytes is not a multiple of 4`);
    encoder.copyBufferToBuffer(b, 0, out, offset, bytes[i]);
    offset += bytes[i];
  });
  gpu.queue.submit([encoder.finish()]);
  return out;
}

/** For fused row `row`, the part it comes from and its row inside that part. */
function locate(rows: number[], row: number): { part: number; local: number } {
  let start = 0;
  for (let i = 0; i < rows.length; i++) {
    if (row < start + rows[i]) return { part: i, local: row - start };
    start += rows[i];
  }
  throw new ModelError('DAWN_ERR_MODEL_FUSE', `row ${row} is past the stacked rows ${rows.join('+')}`);
}

/** One GpuWeight whose rows are parts[0]'s, then parts[1]'s, ... (same format, K, one expert each). */
export async function stackRows(gpu: Gpu, label: string, parts: GpuWeight[]): Promise<GpuWeight> {
  const first = parts[0];
  const { format, K } = first;
  for (const p of parts) {
    if (p.format !== format) fail(label, `${p.label} (${p.format}) onto ${first.label} (${format})`);
    if (p.K !== K) fail(label, `${p.label} (K ${p.K}) onto ${first.label} (K ${K})`);
    if (p.numExperts !== 1) fail(label, `${p.label}: ${p.numExperts} stacked experts`);
    if (p.preScale) fail(label, `${p.label}: it has a pre_quant_scale (AWQ), which the stacked weight cannot keep`);
  }
  const rows = parts.map((p) => p.N);
  const N = rows.reduce((a, b) => a + b, 0);
  const data = concatBuffers(
    gpu,
    `${label}.data`,
    parts.map((p) => p.data),
    rows.map((n) => n * K * dataBytesPerElement[format]),
  );
  const w: GpuWeight = { label, format, numExperts: 1, N, K, data };
  if (format === 'nvfp4') {
    w.blockScales = concatBuffers(
      gpu,
      `${label}.blockScales`,
      parts.map((p) => p.blockScales!),
      rows.map((n) => (n * K) / 16),
    );
    // Each part has its own global scale per row group; the stack's groups are the gcd of all group sizes.
    const groupRows = parts.reduce((g, p) => gcd(g, p.N / (p.numRowGroups ?? 1)), 0);
    const scales = await Promise.all(parts.map((p) => readF32(gpu, p.globalScales!, p.numRowGroups ?? 1)));
    const G = N / groupRows;
    const values = new Float32Array(G);
    for (let j = 0; j < G; j++) {
      const { part, local } = locate(rows, j * groupRows);
      const partGroupRows = parts[part].N / (parts[part].numRowGroups ?? 1);
      values[j] = scales[part][Math.floor(local / partGroupRows)];
    }
    w.globalScales = createBufferFrom(gpu, `${label}.globalScales`, values);
    w.numRowGroups = G;
  }
  if (format === 'fp8') {
    const blocks = parts.map((p) => p.scaleBlock ?? [p.N, p.K]);
    const bk = blocks[0][1];
    if (blocks.some((b) => Math.ceil(K / b[1]) !== Math.ceil(K / bk) || b[1] !== bk))
      fail(label, `FP8 weights with different scale blocks along K [${blocks.map((b) => b[1])}]`);
    // A row block of the stack must sit inside one block of its part: gcd of every part's block and row count.
    const bn = parts.reduce((g, p, i) => gcd(gcd(g, Math.min(blocks[i][0], p.N)), p.N), 0);
    const gk = Math.ceil(K / bk);
    const scales = await Promise.all(parts.map((p, i) => readF32(gpu, p.scales!, Math.ceil(p.N / blocks[i][0]) * gk)));
    const gn = N / bn;
    const values = new Float32Array(gn * gk);
    for (let r = 0; r < gn; r++) {
      const { part, local } = locate(rows, r * bn);
      const pr = Math.floor(local / blocks[part][0]);
      for (let c = 0; c < gk; c++) values[r * gk + c] = scales[part][pr * gk + c];
    }
    w.scales = createBufferFrom(gpu, `${label}.scales`, values);
    w.scaleBlock = [bn, bk];
  }
  await gpu.sync(label);
  return w;
}

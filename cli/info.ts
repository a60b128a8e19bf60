// `dawnllm info`: which adapter Dawn picked, what it offers, and a self-test that runs a real kernel against its
// CPU reference — the quickest proof that the GPU stack works on this machine.
import { performance } from 'node:perf_hooks';
import { createBuffer, createBufferFrom, readF32 } from '../kernels/gpu/buffers.js';
import { describeCapabilities } from '../kernels/gpu/capabilities.js';
import { openGpu } from '../kernels/gpu/device.js';
import { runDispatches } from '../kernels/gpu/dispatch.js';
import { timeDispatches } from '../kernels/gpu/timing.js';
import { rmsNormRef } from '../kernels/reference/rms_norm.js';
import { RmsNorm } from '../kernels/rms_norm.js';
import { type FlagSpec, formatHelp, parseArgs } from './args.js';

const specs: FlagSpec[] = [
  { name: 'device', type: 'string', help: 'adapter name substring (also DAWNLLM_ADAPTER)' },
  { name: 'json', type: 'boolean', default: false, help: 'print the capabilities object as JSON' },
  { name: 'self-test', type: 'boolean', default: true, help: 'run rms_norm on the GPU against the CPU reference' },
  { name: 'help', type: 'boolean', default: false, help: 'show this help' },
];

export async function runInfo(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, specs);
  if (flags.help) {
    process.stdout.write(formatHelp('usage: dawnllm info [options]', specs));
    return 0;
  }
  const gpu = await openGpu({ adapterName: flags.device as string | undefined, quiet: true });
  try {
    if (flags.json) console.log(JSON.stringify(gpu.caps, null, 2));
    else console.log(`adapter: ${describeCapabilities(gpu.caps)}`);
    if (!flags['self-test']) return 0;
    const rows = 64;
    const cols = 2048;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * 3);
    const w = Float32Array.from({ length: cols }, (_, i) => 1 + Math.cos(i) * 0.25);
    const t0 = performance.now();
    const kernel = await RmsNorm.create(gpu, { src: 'f32', dst: 'f32' });
    const out = createBuffer(gpu, 'self-test/out', rows * cols * 4);
    const dispatch = kernel.bind(
      { x: createBufferFrom(gpu, 'self-test/x', x), w: createBufferFrom(gpu, 'self-test/w', w), out },
      { rows, cols, eps: 1e-6 },
    );
    await runDispatches(gpu, [dispatch], 'self-test');
    const got = await readF32(gpu, out);
    const ref = rmsNormRef(x, w, rows, cols, 1e-6);
    let maxRel = 0;
    for (let i = 0; i < ref.length; i++)
      maxRel = Math.max(maxRel, Math.abs(got[i] - ref[i]) / (Math.abs(ref[i]) + 1e-6));
    const firstMs = performance.now() - t0;
    const timing = await timeDispatches(gpu, (pass) => dispatch.encode(pass), { reps: 20 });
    const gbps = (rows * cols * 8) / (timing.msPerRep * 1e6);
    const ok = maxRel < 1e-4;
    console.log(
      `self-test ${kernel.name} (${rows}x${cols}): ${ok ? 'OK' : 'FAILED'}, max relative error ${maxRel.toExponential(2)}; ` +
        `first run ${firstMs.toFixed(1)} ms incl. compile; ${timing.msPerRep.toFixed(3)} ms/run (${timing.method}), ${gbps.toFixed(1)} GB/s`,
    );
    return ok ? 0 : 1;
  } finally {
    gpu.destroy();
  }
}

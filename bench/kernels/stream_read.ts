// Streaming-read peak on its own: `npx tsx bench/kernels/stream_read.ts [--quick] [--json PATH]`.
// Every other kernel bench measures the same peak in its own run and reports against it.
import { BenchRunner, measureStreamPeak, openBenchGpu, parseBenchArgs } from './harness.js';

const args = parseBenchArgs();
const gpu = await openBenchGpu();
const peak = await measureStreamPeak(gpu, args);
const code = new BenchRunner(gpu, args, peak).finish();
gpu.destroy();
process.exit(code);

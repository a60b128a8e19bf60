// `dawnllm serve` in a child process with the fake runner in place of the GPU one, for the SIGTERM test.
// Usage: node --import tsx test/server/serve_child.ts [serve flags] MODEL
import { runServe } from '../../cli/serve.js';
import { FakeModelRunner } from '../../engine/fake_model_runner.js';

const code = await runServe(process.argv.slice(2), {
  runnerFactory: async () => ({
    runner: new FakeModelRunner({ numKvBlocks: 64, blockSize: 16, maxModelLen: 512, vocabSize: 2048, stepDelayMs: 10 }),
    format: 'fake CPU runner (test)',
    loadSummary: ['no tensors: the fake runner computes tokens from hashes'],
  }),
});
process.exit(code);

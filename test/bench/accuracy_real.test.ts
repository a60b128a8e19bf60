// The bundled model through the real engine and the GPU runner (lavapipe here): it answers "What is 7 times 8?"
// with "56", and a seeded subset of arith-gen scores as transformers scored it (exact match 1.000 for BF16 and
// NVFP4, reference-accuracy.json). The BF16 original is read from ../shared when present (not committed).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../bench/accuracy/backend.js';
import { EngineBackend } from '../../bench/accuracy/engine_backend.js';
import { mapPool, scoreGen } from '../../bench/accuracy/evaluate.js';
import { sampleIndices } from '../../bench/accuracy/stats.js';
import { loadTaskFile, type GenItem } from '../../bench/accuracy/tasks.js';
import { bundledTasksDir, defaultModelDir } from '../../models/default_model.js';
import { findFixture, missingFixtureReason } from '../helpers/fixtures.js';
import { gpuOrSkip } from '../helpers/gpu.js';

const gpu = await gpuOrSkip();
const bf16Dir = findFixture('qwen3vlmoe-arith/bf16');
if (bf16Dir === null) console.log(`BF16 arith checks skipped: ${missingFixtureReason('qwen3vlmoe-arith/bf16')}`);

const gen = loadTaskFile(join(bundledTasksDir(), 'arith-gen.jsonl'));
// Eight items drawn with a fixed seed (every subtask of the file can appear), the same every run.
const subset = sampleIndices(gen.items.length, 8, 7).map((i) => gen.items[i] as GenItem);

const opened: Backend[] = [];
afterAll(async () => {
  for (const b of opened) await b.close();
});

async function open(modelDir: string): Promise<Backend> {
  const backend = await EngineBackend.load({ modelDir, maxNumSeqs: 8, maxNumBatchedTokens: 256 });
  opened.push(backend);
  return backend;
}

async function checkSubset(backend: Backend): Promise<void> {
  const results = await mapPool(subset, 8, (item) => scoreGen(backend, item, { kind: 'exact' }, 8));
  expect(results.map((r) => r.output.trim())).toEqual(subset.map((it) => it.gold));
}

describe.skipIf(gpu === null)('bundled model through the engine on the GPU runner', () => {
  it('answers "What is 7 times 8?" with "56" and matches transformers on an arith-gen subset', async () => {
    const backend = await open(defaultModelDir());
    expect(await backend.generate(await backend.chatPromptIds('What is 7 times 8?'), 8)).toBe('56');
    await checkSubset(backend);
  }, 300_000);

  it.skipIf(bf16Dir === null)(
    'BF16 original matches transformers on the same subset',
    async () => {
      const backend = await open(bf16Dir!);
      expect(await backend.generate(await backend.chatPromptIds('What is 7 times 8?'), 8)).toBe('56');
      await checkSubset(backend);
    },
    300_000,
  );
});

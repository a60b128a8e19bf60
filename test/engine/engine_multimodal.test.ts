// Requests with images on the fake runner: every scheduled entry hands the runner the request's image list and the
// prompt positions it covers (chunked prefill splits an image across steps), a prefix-cache hit may end inside an
// image (as in vLLM) but never crosses to another image, the runner's image-cache counters reach the metrics, and
// malformed spans are 400s.
import { describe, expect, it } from 'vitest';
import { FakeModelRunner } from '../../engine/fake_model_runner.js';
import type { MultiModalCacheStats, StepOutput } from '../../engine/model_runner.js';
import type { MultiModalInput } from '../../engine/request.js';
import { createSamplingParams } from '../../engine/sampling_params.js';
import type { ScheduledBatch, ScheduledSeq } from '../../engine/scheduled_batch.js';
import { collect, makePrompt } from './helpers.js';
import { LLMEngine } from '../../engine/engine.js';

/** Records what each entry carried; counts one image-cache query per image in a chunk that starts it. */
class RecordingRunner extends FakeModelRunner {
  readonly seen: { requestHash: string | null; phase: ScheduledSeq['phase']; start: number; end: number }[] = [];
  readonly mmLists = new Set<readonly MultiModalInput[]>();
  queries = 0;

  override async execute(batch: ScheduledBatch): Promise<StepOutput> {
    for (const e of batch.entries) {
      if (e.mmInputs.length > 0) this.mmLists.add(e.mmInputs);
      const start = e.positions[0];
      this.seen.push({
        requestHash: e.mmInputs[0]?.contentHash ?? null,
        phase: e.phase,
        start,
        end: start + e.tokenIds.length,
      });
      for (const mm of e.mmInputs)
        if (mm.tokenStart >= start && mm.tokenStart < start + e.tokenIds.length) this.queries++;
    }
    return super.execute(batch);
  }

  multiModalCacheStats(): MultiModalCacheStats {
    return { queries: this.queries, hits: 1 };
  }
}

function setup(maxNumBatchedTokens: number) {
  const runner = new RecordingRunner({ numKvBlocks: 64, blockSize: 16 });
  const engine = new LLMEngine({ runner, maxNumSeqs: 4, maxNumBatchedTokens, maxWaiting: 8, eosTokenIds: [] });
  return { runner, engine };
}

const greedy = (maxTokens: number) => createSamplingParams({ temperature: 0, ignoreEos: true, maxTokens });

function image(hash: string, tokenStart: number, numTokens: number): MultiModalInput {
  return { contentHash: hash, tokenStart, numTokens, data: { hash } };
}

describe('LLMEngine with images (fake runner)', () => {
  it('hands every entry the request’s images and the positions it runs, chunk by chunk', async () => {
    const { runner, engine } = setup(8);
    const prompt = makePrompt(30, 1);
    const mmInputs = [image('img-a', 5, 12), image('img-b', 20, 4)];
    const out = await collect(
      engine.addRequest({ requestId: 'a', promptTokenIds: prompt, params: greedy(3), mmInputs }),
    );
    expect(out.tokens[0].length).toBe(3);
    // One shared list (the sequence's), never a copy: the runner may key per-request state on it.
    expect(runner.mmLists.size).toBe(1);
    const [list] = runner.mmLists;
    expect(list).toEqual(mmInputs);
    const prefills = runner.seen.filter((s) => s.phase === 'prefill');
    expect(prefills.map((s) => [s.start, s.end])).toEqual([
      [0, 8],
      [8, 16],
      [16, 24],
      [24, 30],
    ]);
    // Decode entries carry the images too (the runner's M-RoPE positions continue after them).
    expect(runner.seen.filter((s) => s.phase === 'decode').every((s) => s.requestHash === 'img-a')).toBe(true);
    const text = await collect(engine.addRequest({ requestId: 't', promptTokenIds: prompt, params: greedy(1) }));
    expect(text.tokens[0].length).toBe(1);
    expect(runner.seen[runner.seen.length - 1].requestHash).toBeNull();
    const snap = engine.metricsSnapshot();
    expect(snap.mmCacheQueries).toBe(2);
    expect(snap.mmCacheHits).toBe(1);
  });

  it('reuses KV blocks up to inside an image for the same image, and none past a different image', async () => {
    const { runner, engine } = setup(64);
    const prompt = makePrompt(50, 2);
    const mm = [image('img-a', 10, 30)]; // tokens 10..39: blocks 0, 1 and 2 touch it
    const first = await collect(
      engine.addRequest({ requestId: 'a', promptTokenIds: prompt, params: greedy(2), mmInputs: mm }),
    );
    expect(first.done.usage.cachedPromptTokens).toBe(0);
    // Same image, prompt diverging at token 45: blocks 0 and 1 (tokens 0..31) hit, ending inside the image.
    const diverging = [...prompt.slice(0, 45), ...makePrompt(5, 3)];
    runner.seen.length = 0;
    const second = await collect(
      engine.addRequest({ requestId: 'b', promptTokenIds: diverging, params: greedy(2), mmInputs: mm }),
    );
    expect(second.done.usage.cachedPromptTokens).toBe(32);
    expect(runner.seen[0]).toMatchObject({ phase: 'prefill', start: 32, end: 50, requestHash: 'img-a' });
    // Same tokens, another image: only block 0 (tokens 0..15 — it overlaps the image) would match by tokens, and
    // the image hash in its key keeps it apart.
    const other = await collect(
      engine.addRequest({
        requestId: 'c',
        promptTokenIds: prompt,
        params: greedy(2),
        mmInputs: [image('img-b', 10, 30)],
      }),
    );
    expect(other.done.usage.cachedPromptTokens).toBe(0);
  });

  it('refuses spans that overlap, run backwards or leave the prompt', () => {
    const { engine } = setup(64);
    const prompt = makePrompt(20, 4);
    const add = (mmInputs: MultiModalInput[]) => () =>
      engine.addRequest({ requestId: `x${Math.random()}`, promptTokenIds: prompt, params: greedy(1), mmInputs });
    expect(add([image('a', 2, 6), image('b', 5, 2)])).toThrow(
      /image 1 starts at prompt token 5, inside or before image 0/,
    );
    expect(add([image('a', 10, 2), image('b', 2, 2)])).toThrow(/image 1 starts at prompt token 2/);
    expect(add([image('a', 15, 6)])).toThrow(/image 0 covers prompt tokens \[15, 21\)/);
    expect(add([image('a', 3, 0)])).toThrow(/non-empty span/);
  });
});

// Text out of the engine with the tiny fixture's real byte-level BPE tokenizer: UTF-8-safe deltas, stop strings
// matched across token boundaries, EOS ids from generation_config.json. The fake runner is scripted to "generate"
// the tokens of known texts (it still reads its context back from the paged KV cache).
import { describe, expect, it } from 'vitest';
import { eosTokenIdsOf, loadGenerationConfig } from '../../engine/generation_config.js';
import type { SamplingParamsInput } from '../../engine/sampling_params.js';
import { TextOutputProcessor } from '../../engine/text_output_processor.js';
import { loadTinyTokenizer, tinyCheckpointDir } from '../models/common/fixture_tokenizer.js';
import { makeEngine, run } from './helpers.js';

const tokenizer = loadTinyTokenizer();

describe.skipIf(!tokenizer)('LLMEngine text with the tiny tokenizer', () => {
  const tok = tokenizer!;
  const config = loadGenerationConfig(tinyCheckpointDir()!);
  const eosTokenIds = eosTokenIdsOf(tok.eosTokenId, config);
  const texts = [
    'Hello world. The answer is 42!\nEND of story',
    'Party 🎉 café 東京 done',
    '你好世界，今天天气很好。👍🏽',
    'naïve — ok',
  ];
  const encoded = texts.map((t) => tok.encode(t, { addSpecialTokens: false }));
  const promptLen = 6;
  /** Prompt i "generates" text i, then `end` forever (EOS by default). */
  const promptOf = (i: number) => [i, 100, 101, 102, 103, 104];

  function textEngine(end = eosTokenIds[0], processor?: TextOutputProcessor) {
    const script = (ctx: readonly number[]) => {
      const ids = encoded[ctx[0]];
      const k = ctx.length - promptLen;
      return k < ids.length ? ids[k] : end;
    };
    return makeEngine(
      { vocabSize: tok.vocabSize, script, blockSize: 4 },
      { eosTokenIds, ...(processor ? { outputProcessor: processor } : { tokenizer: tok }) },
    );
  }

  const generate = (i: number, params: SamplingParamsInput = {}, end?: number) => {
    const { engine } = textEngine(end);
    return run(engine, promptOf(i), { ignoreEos: false, maxTokens: 100, ...params });
  };

  it('reads the EOS ids from generation_config.json (and the tokenizer)', () => {
    expect(eosTokenIds).toEqual([2032, 2030]);
  });

  it('streams UTF-8-safe deltas that add up to the text, 4 requests at once, and leaves EOS out', async () => {
    const processor = new TextOutputProcessor(tok);
    const { engine } = textEngine(undefined, processor);
    const outs = await Promise.all(texts.map((_, i) => run(engine, promptOf(i), { ignoreEos: false, maxTokens: 100 })));
    for (const [i, out] of outs.entries()) {
      expect(out.text[0]).toBe(texts[i]);
      expect(out.tokens[0]).toEqual([...encoded[i], 2032]);
      expect(out.finishReasons).toEqual(['stop']);
      const deltas = out.events.flatMap((e) => (e.type === 'delta' ? [e.textDelta] : []));
      for (const d of deltas) expect(d).not.toContain('\uFFFD');
    }
    // Multi-byte characters split over byte tokens: some deltas were held back empty.
    const emptyDeltas = outs[1].events.filter((e) => e.type === 'delta' && e.textDelta === '');
    expect(emptyDeltas.length).toBeGreaterThan(0);
    expect(processor.numTracked).toBe(0);
  });

  it("ends on generation_config's second EOS id too", async () => {
    const out = await generate(3, {}, 2030);
    expect(out.text[0]).toBe(texts[3]);
    expect(out.finishReasons).toEqual(['stop']);
  });

  it('matches a stop string spread over five tokens and leaves it out', async () => {
    const out = await generate(0, { stop: ['answer is'] });
    expect(out.text[0]).toBe('Hello world. The ');
    expect(out.finishReasons).toEqual(['stop']);
    const last = out.events.findLast((e) => e.type === 'delta');
    expect(last).toMatchObject({ finishReason: 'stop', stopReason: 'answer is' });
    // Generation stopped at the token that completed the match (" is", the 14th).
    expect(out.tokens[0]).toEqual(encoded[0].slice(0, 14));
    expect(out.done.usage.completionTokens).toBe(14);
  });

  it('keeps the stop string with include_stop_str_in_output, and cuts inside a token', async () => {
    const kept = await generate(0, { stop: ['answer is'], includeStopStrInOutput: true });
    expect(kept.text[0]).toBe('Hello world. The answer is');
    // "ld. T" ends inside the token " The": the text is cut mid-token.
    const cut = await generate(0, { stop: ['xyz', 'ld. T'] });
    expect(cut.text[0]).toBe('Hello wor');
    expect(cut.events.findLast((e) => e.type === 'delta')).toMatchObject({ stopReason: 'ld. T' });
    // Across a multi-byte character.
    const cjk = await generate(2, { stop: ['天气'] });
    expect(cjk.text[0]).toBe('你好世界，今天'); // 今天天气: the second 天 starts the match
  });

  it('holds back a possible stop-string start and releases it when the sequence ends otherwise', async () => {
    const atEos = await generate(0, { stop: ['story!'] });
    expect(atEos.text[0]).toBe(texts[0]);
    const last = atEos.events.findLast((e) => e.type === 'delta')!;
    expect(last.type === 'delta' && last.textDelta).toBe('story'); // held back until EOS
    const atLength = await generate(0, { stop: ['story!'], maxTokens: encoded[0].length });
    expect(atLength.text[0]).toBe(texts[0]);
    expect(atLength.finishReasons).toEqual(['length']);
  });

  it('does not stop on a stop string within the first min_tokens outputs', async () => {
    // "Hello" is complete after 3 tokens; min_tokens 5 lets it pass, and the text runs to EOS.
    const passed = await generate(0, { stop: ['Hello'], minTokens: 5 });
    expect(passed.text[0]).toBe(texts[0]);
    const stopped = await generate(0, { stop: ['Hello'], minTokens: 2 });
    expect(stopped.text[0]).toBe('');
    expect(stopped.tokens[0]).toHaveLength(3);
  });

  it('leaves special tokens out of the text unless skip_special_tokens is false', async () => {
    const imStart = tok.requireTokenId('<|im_start|>');
    const skipped = await generate(3, { maxTokens: encoded[3].length + 1 }, imStart);
    expect(skipped.text[0]).toBe(texts[3]);
    const kept = await generate(3, { maxTokens: encoded[3].length + 1, skipSpecialTokens: false }, imStart);
    expect(kept.text[0]).toBe(`${texts[3]}<|im_start|>`);
  });
});

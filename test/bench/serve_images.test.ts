// `dawnllm bench serve` with images: against the real server around the fake runner that takes images (the tiny
// fixture's tokenizer, chat template and preprocessor), requests are chat requests whose user turn is the image
// parts then the /detokenize'd random prompt; TTFT/ITL come from the chat stream; the report tells the image
// size and the tokens the images added. The synthetic screenshots decode to the asked size, repeatably; bad flags
// are usage errors.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runBenchServe } from '../../cli/bench.js';
import { parseImageSize, sniffImageFormat, syntheticScreenshot } from '../../bench/serve/image.js';
import { sendChatCompletion } from '../../bench/serve/request.js';
import { runServeBenchmark, type ServeBenchOptions } from '../../bench/serve/run.js';
import { Tokenizer } from '../../models/common/tokenizer.js';
import { readImageProcessorConfig } from '../../models/qwen3_vl_moe/processor/index.js';
import { repoRoot } from '../helpers/fixtures.js';
import { MODEL_NAME, modelDir, startTestServer, type TestServer } from '../server/helpers.js';

const fixturePng = join(repoRoot, 'test', 'fixtures', 'qwen3vlmoe-tiny', 'image', 'gradient-100x75.png');

let vision: TestServer;
let baseUrl: string;
beforeAll(async () => {
  const tokenizer = Tokenizer.load(modelDir);
  vision = await startTestServer({
    multimodal: {
      imagePadTokenId: tokenizer.requireTokenId('<|image_pad|>'),
      imageProcessor: await readImageProcessorConfig(modelDir),
    },
  });
  baseUrl = vision.baseURL.replace(/\/v1$/, '');
});
afterAll(async () => {
  await vision.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Records the JSON body of every POST the client makes, passing the call through. */
function recordPosts(): { url: string; body: Record<string, unknown> }[] {
  const posts: { url: string; body: Record<string, unknown> }[] = [];
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    if (init?.method === 'POST') posts.push({ url: String(input), body: JSON.parse(String(init.body)) });
    return realFetch(input, init);
  });
  return posts;
}

const options = (extra: Partial<ServeBenchOptions> = {}): ServeBenchOptions => ({
  baseUrl,
  endpoint: '/v1/chat/completions',
  model: null,
  numPrompts: 3,
  inputLen: 12,
  outputLen: 4,
  rangeRatio: 0,
  maxConcurrency: 2,
  requestRate: Infinity,
  seed: 5,
  ignoreEos: true,
  vocabSize: 1000,
  ...extra,
});

describe('bench serve with images', () => {
  it('sends image parts then the detokenized prompt, times the chat stream and counts image tokens', async () => {
    const posts = recordPosts();
    const engineBefore = vision.requests.length;
    const { metrics, config, results } = await runServeBenchmark(
      options({ images: { spec: { kind: 'synthetic', width: 320, height: 180 }, perRequest: 2 } }),
    );
    expect(config).toMatchObject({ model: MODEL_NAME, backend: 'openai-chat' });
    expect(config.url).toMatch(/\/v1\/chat\/completions$/);

    // Before the run: one /detokenize and one /tokenize (text only) per prompt, untimed.
    const detokenized = posts.filter((p) => p.url.endsWith('/detokenize'));
    expect(detokenized.map((p) => (p.body.tokens as number[]).length)).toEqual([12, 12, 12]);
    expect(posts.filter((p) => p.url.endsWith('/tokenize'))).toHaveLength(3);
    const tokenizer = Tokenizer.load(modelDir);
    const texts = detokenized.map((p) => tokenizer.decode(p.body.tokens as number[]));

    const chats = posts.filter((p) => p.url.endsWith('/v1/chat/completions'));
    expect(chats).toHaveLength(4); // the test request, then 3
    const urls = new Set<string>();
    for (const [i, chat] of chats.entries()) {
      expect(chat.body).toMatchObject({
        model: MODEL_NAME,
        max_completion_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
      });
      const [message] = chat.body.messages as { role: string; content: Record<string, unknown>[] }[];
      expect(message.role).toBe('user');
      expect(message.content.map((c) => c.type)).toEqual(['image_url', 'image_url', 'text']);
      // The test request reuses prompt 0's text (as vLLM's) with images of its own.
      expect(message.content[2].text).toBe(texts[i === 0 ? 0 : i - 1]);
      for (const part of message.content.slice(0, 2)) {
        const url = (part.image_url as { url: string }).url;
        expect(url).toMatch(/^data:image\/png;base64,/);
        const meta = await sharp(Buffer.from(url.split(',')[1], 'base64')).metadata();
        expect([meta.width, meta.height]).toEqual([320, 180]);
        urls.add(url);
      }
    }
    expect(urls.size).toBe(8); // distinct per request and per position: no cache can serve a repeat

    // The engine saw two images in every request.
    const engineRequests = vision.requests.slice(engineBefore);
    expect(engineRequests).toHaveLength(4);
    for (const r of engineRequests) expect(r.mmInputs).toHaveLength(2);

    expect(metrics).toMatchObject({ completed: 3, failed: 0, totalInputTokens: 36, totalOutputTokens: 12 });
    expect(results.every((r) => r.isUsageCount)).toBe(true);
    expect(metrics.ttftMs.count).toBe(3);
    expect(metrics.ttftMs.min).toBeGreaterThan(0);
    expect(metrics.e2elMs.mean).toBeGreaterThanOrEqual(metrics.ttftMs.mean);
    expect(metrics.itlMs.count).toBeGreaterThan(0);
    expect(metrics.itlMs.count).toBeLessThanOrEqual(9); // at most one gap per token after the first

    // Image tokens = usage.prompt_tokens minus the text-only prompt: each image's pads plus its start/end marks.
    const perRequest = engineRequests.slice(1).map((r) => r.mmInputs!.reduce((n, m) => n + m.numTokens + 2, 0));
    const images = metrics.images!;
    expect(images).toMatchObject({ perRequest: 2, width: 320, height: 180, format: 'png', source: 'synthetic' });
    expect(images.imageTokens!.count).toBe(3);
    expect(images.imageTokens!.mean).toBeCloseTo(perRequest.reduce((a, b) => a + b) / 3, 9);
    expect(images.serverPromptTokens!.mean).toBeCloseTo(
      engineRequests.slice(1).reduce((n, r) => n + r.promptTokenIds.length, 0) / 3,
      9,
    );
    expect(images.meanBytes).toBeGreaterThan(1000);
  });

  it('runs from the command line with --image: the file as a data URL, the image rows in the table and JSON', async () => {
    const posts = recordPosts();
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const file = join(mkdtempSync(join(tmpdir(), 'bench-serve-img-')), 'result.json');
    const code = await runBenchServe([
      '--base-url',
      baseUrl,
      '--image',
      fixturePng,
      '--num-prompts',
      '2',
      '--random-input-len',
      '8',
      '--random-output-len',
      '3',
      '--save-result',
      '--result-filename',
      file,
    ]);
    expect(code).toBe(0);
    const expectedUrl = `data:image/png;base64,${readFileSync(fixturePng).toString('base64')}`;
    const chats = posts.filter((p) => p.url.endsWith('/v1/chat/completions'));
    expect(chats).toHaveLength(3);
    for (const chat of chats) {
      const [message] = chat.body.messages as { content: { image_url?: { url: string } }[] }[];
      expect(message.content).toHaveLength(2);
      expect(message.content[0].image_url?.url).toBe(expectedUrl);
    }
    const text = out.join('');
    expect(text).toMatch(/Images per request:\s+1\n/);
    expect(text).toMatch(/Image size \(px\):\s+100x75 PNG \(file, the same in every request\)/);
    // 75x100 → 64x96 pixels → 6 tokens, plus <|vision_start|> and <|vision_end|>.
    expect(text).toMatch(/Image tokens per request, mean:\s+8\.00/);
    expect(text).toContain('Mean TTFT (ms):');
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json).toMatchObject({
      backend: 'openai-chat',
      completed: 2,
      num_images_per_request: 1,
      image_width: 100,
      image_height: 75,
      mean_image_tokens: 8,
      image_source: 'file',
    });
  });

  it('a chat endpoint without images sends text-only chat requests', async () => {
    const posts = recordPosts();
    const { metrics, config } = await runServeBenchmark(options({ numPrompts: 2 }));
    expect(config.backend).toBe('openai-chat');
    expect(metrics.completed).toBe(2);
    expect(metrics.images).toBeUndefined();
    const chats = posts.filter((p) => p.url.endsWith('/v1/chat/completions'));
    for (const chat of chats) {
      const [message] = chat.body.messages as { content: { type: string }[] }[];
      expect(message.content.map((c) => c.type)).toEqual(['text']);
    }
  });

  it('refuses bad image flags with clear errors', async () => {
    const run = (...args: string[]) => runBenchServe(['--base-url', 'http://127.0.0.1:9', '--model', 'm', ...args]);
    await expect(run('--image-size', '1280')).rejects.toThrow(/--image-size must be WIDTHxHEIGHT.*got "1280"/);
    await expect(run('--image-size', '0x720')).rejects.toThrow(/--image-size must be WIDTHxHEIGHT/);
    await expect(run('--image-size', '20000x10')).rejects.toThrow(/sides 1\.\.16384/);
    await expect(run('--image', fixturePng, '--image-size', '64x64')).rejects.toThrow(/not both/);
    await expect(run('--num-images-per-request', '2')).rejects.toThrow(/needs --image or --image-size/);
    await expect(run('--image-size', '64x64', '--num-images-per-request', '0')).rejects.toThrow(
      /--num-images-per-request must be an integer ≥ 1, got 0/,
    );
    await expect(run('--image', '/nonexistent/shot.png')).rejects.toThrow(/cannot read --image \/nonexistent/);
    const notImage = join(mkdtempSync(join(tmpdir(), 'bench-serve-img-')), 'shot.png');
    writeFileSync(notImage, 'not an image at all');
    await expect(run('--image', notImage)).rejects.toThrow(/is not a PNG, JPEG or WebP file/);
  });
});

describe('bench serve image pieces', () => {
  it('--image-size makes a screenshot-like PNG of that size, the same for a seed, another for another', async () => {
    const png = await syntheticScreenshot(1280, 720, 7);
    expect(sniffImageFormat(png)).toBe('png');
    const image = sharp(png);
    const meta = await image.metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1280, 720]);
    // Not a flat colour: the channels vary, and the encoding is screenshot-sized, not a few hundred bytes.
    const stats = await image.stats();
    expect(Math.max(...stats.channels.map((c) => c.stdev))).toBeGreaterThan(20);
    expect(png.length).toBeGreaterThan(20_000);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 3) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    expect(colours.size).toBeGreaterThan(8);
    expect((await syntheticScreenshot(1280, 720, 7)).equals(png)).toBe(true);
    expect((await syntheticScreenshot(1280, 720, 8)).equals(png)).toBe(false);
    // Tiny and odd sizes still come out exact.
    for (const [w, h] of [
      [1, 1],
      [37, 5],
    ]) {
      const m = await sharp(await syntheticScreenshot(w, h, 1)).metadata();
      expect([m.width, m.height]).toEqual([w, h]);
    }
  });

  it('parses WxH and sniffs formats from content', () => {
    expect(parseImageSize('1280x720')).toEqual({ width: 1280, height: 720 });
    expect(parseImageSize('64X48')).toEqual({ width: 64, height: 48 });
    for (const bad of ['1280', '1280x', 'x720', '-1x5', '1.5x2', '0x1']) expect(parseImageSize(bad)).toBeNull();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 '))).toBe('webp');
    expect(sniffImageFormat(new TextEncoder().encode('GIF89a'))).toBeNull();
  });

  it("does not count the chat stream's role chunk as a token: TTFT at the first content, one ITL per later chunk", async () => {
    const server: Server = createServer((req, res) => {
      req.resume();
      res.setHeader('content-type', 'text/event-stream');
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      const events = [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'a' }),
        chunk({ content: 'b' }),
        chunk({ content: 'c' }),
        chunk({}, 'length'),
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 40, completion_tokens: 4 } })}\n\n`,
        'data: [DONE]\n\n',
      ];
      let i = 0;
      const next = () => {
        res.write(events[i++]);
        if (i === events.length) return void res.end();
        // The role chunk goes with the first token; later chunks are 15 ms apart.
        setTimeout(next, i === 1 ? 0 : 15);
      };
      setTimeout(next, 30);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
      const r = await sendChatCompletion({
        url,
        model: 'm',
        text: 'hi',
        imageUrls: [],
        promptLen: 2,
        outputLen: 4,
        ignoreEos: true,
      });
      expect(r).toMatchObject({ success: true, outputTokens: 4, isUsageCount: true, serverPromptTokens: 40 });
      expect(r.ttft).toBeGreaterThanOrEqual(0.025);
      expect(r.itl).toHaveLength(3); // 'b', 'c' and the finish; no ~0 gap from the role chunk
      for (const gap of r.itl) expect(gap).toBeGreaterThanOrEqual(0.01);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

// image_url parts through /v1/chat/completions (fake runner that takes images, the tiny fixture's real tokenizer,
// chat template and preprocessor_config): the engine gets the prompt with each <|image_pad|> expanded and one
// MultiModalInput per image; every way an image can be refused is a 400 in OpenAI's shape naming the part.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessedImage } from '../../models/qwen3_vl_moe/processor/index.js';
import { decodeImage, processImage, readImageProcessorConfig } from '../../models/qwen3_vl_moe/processor/index.js';
import { Tokenizer } from '../../models/common/tokenizer.js';
import { mediaOptionsFrom } from '../../server/media/options.js';
import { repoRoot } from '../helpers/fixtures.js';
import { MODEL_NAME, modelDir, startTestServer, type TestServer } from './helpers.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'qwen3vlmoe-tiny');
const png = readFileSync(join(fixtures, 'image', 'gradient-100x75.png'));
const dataUrl = (bytes: Uint8Array, type = 'image/png') =>
  `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
const golden = JSON.parse(readFileSync(join(fixtures, 'golden', 'cases.json'), 'utf8')).checkpoints.bf16.cases.image;

let vision: TestServer;
let textOnly: TestServer;
let http: Server;
let httpBase: string;
let root: string;
let expected: ProcessedImage;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dawn-images-'));
  mkdirSync(join(root, 'allowed'));
  writeFileSync(join(root, 'allowed', 'gradient.png'), png);
  writeFileSync(join(root, 'outside.png'), png);
  symlinkSync(join(root, 'outside.png'), join(root, 'allowed', 'link-out.png'));
  http = createServer((req, res) => {
    if (req.url === '/gradient.png') res.end(png);
    else if (req.url === '/huge.png') res.end(Buffer.alloc(64 * 1024));
    else if (req.url === '/stall.png') res.write(png.subarray(0, 10));
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const tokenizer = Tokenizer.load(modelDir);
  const imageProcessor = await readImageProcessorConfig(modelDir);
  expected = processImage(await decodeImage(png, 'fixture'), imageProcessor);
  vision = await startTestServer({
    multimodal: { imagePadTokenId: tokenizer.requireTokenId('<|image_pad|>'), imageProcessor },
    app: {
      media: mediaOptionsFrom({
        allowedLocalMediaPath: join(root, 'allowed'),
        limitMmPerPrompt: '{"image": 2}',
        fetchTimeoutS: 0.5,
        maxImageBytes: 16 * 1024,
        env: {},
      }),
    },
  });
  textOnly = await startTestServer();
});
afterAll(async () => {
  await vision.close();
  await textOnly.close();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

const imagePart = (url: string) => ({ type: 'image_url' as const, image_url: { url } });
const userTurn = (...urls: string[]) => [
  { role: 'user' as const, content: [...urls.map(imagePart), { type: 'text' as const, text: 'Describe this image.' }] },
];

async function post(server: TestServer, messages: unknown, extra: Record<string, unknown> = {}) {
  const res = await server.app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    payload: { model: MODEL_NAME, messages, max_tokens: 2, temperature: 0, ...extra },
  });
  return { status: res.statusCode, body: res.json() };
}

async function expect400(server: TestServer, messages: unknown, error: Record<string, unknown>) {
  const before = server.requests.length;
  const { status, body } = await post(server, messages);
  expect(body.error).toMatchObject({ type: 'invalid_request_error', ...error });
  expect(status).toBe(400);
  expect(server.requests.length).toBe(before); // nothing reached the engine
}

describe('image_url in chat completions', () => {
  it('a PNG data URL through the openai client: the golden prompt ids, one mmInput per image', async () => {
    const res = await vision.client().chat.completions.create({
      model: MODEL_NAME,
      messages: userTurn(dataUrl(png)),
      max_tokens: 3,
      temperature: 0,
      ...{ return_token_ids: true },
    });
    const body = res as typeof res & { prompt_token_ids: number[] };
    // transformers' prompt for the golden image case: the chat template path plus pad expansion, token for token.
    expect(body.prompt_token_ids).toEqual(golden.prompt_ids);
    expect(res.usage?.prompt_tokens).toBe(golden.prompt_ids.length);
    const request = vision.requests[vision.requests.length - 1];
    expect(request.promptTokenIds).toEqual(golden.prompt_ids);
    const start = golden.prompt_ids.indexOf(vision.model().multimodal!.imagePadTokenId);
    expect(request.mmInputs).toHaveLength(1);
    const [mm] = request.mmInputs!;
    expect(mm).toMatchObject({ contentHash: expected.contentHash, tokenStart: start, numTokens: 6 });
    const data = mm.data as ProcessedImage;
    expect(data.gridThw).toEqual([1, 4, 6]); // 75x100 → 64x96 pixels → 4x6 patches, as transformers
    expect(data.pixelValues).toEqual(expected.pixelValues);
    expect(res.choices[0].finish_reason).toBe('length');
  });

  it('two images: both pads expanded, spans in order; file:// under the allowed directory works', async () => {
    const local = pathToFileURL(join(root, 'allowed', 'gradient.png')).href;
    const { status, body } = await post(vision, userTurn(local, `${httpBase}/gradient.png`), {
      return_token_ids: true,
    });
    expect(status).toBe(200);
    const request = vision.requests[vision.requests.length - 1];
    const spans = request.mmInputs!.map((m) => [m.tokenStart, m.numTokens, m.contentHash]);
    // <|im_start|> us er \n <|vision_start|> [6 pads] <|vision_end|> <|vision_start|> [6 pads] …
    expect(spans).toEqual([
      [5, 6, expected.contentHash],
      [13, 6, expected.contentHash],
    ]);
    expect(body.prompt_token_ids.length).toBe(golden.prompt_ids.length + 8);
  });

  it('streams with images too: the first chunk carries the expanded prompt ids', async () => {
    const stream = await vision.client().chat.completions.create({
      model: MODEL_NAME,
      messages: userTurn(dataUrl(png)),
      max_tokens: 2,
      temperature: 0,
      stream: true,
      ...{ return_token_ids: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk as typeof chunk & { prompt_token_ids?: number[] });
    expect(chunks[0].prompt_token_ids).toEqual(golden.prompt_ids);
    expect(vision.requests[vision.requests.length - 1].mmInputs).toHaveLength(1);
  });

  it('more images than --limit-mm-per-prompt is a 400 naming the limit', async () => {
    const url = dataUrl(png);
    await expect400(vision, userTurn(url, url, url), {
      code: 'DAWN_ERR_API_MEDIA_LIMIT',
      param: 'messages',
      message: expect.stringContaining('At most 2 image(s) may be provided in one prompt, found 3'),
    });
  });

  it('a model without vision refuses images; video is refused', async () => {
    await expect400(textOnly, userTurn(dataUrl(png)), {
      code: 'DAWN_ERR_API_MEDIA_UNSUPPORTED',
      param: 'messages[0].content[0].image_url',
      message: expect.stringContaining('this model takes no images'),
    });
    const video = [{ role: 'user', content: [{ type: 'video_url', video_url: { url: 'http://x/v.mp4' } }] }];
    await expect400(vision, video, {
      code: 'DAWN_ERR_API_MEDIA_UNSUPPORTED',
      param: 'messages[0].content[0].video_url',
    });
  });

  it('a corrupt image is a 400 naming the part', async () => {
    const corrupt = Uint8Array.from(png);
    corrupt.fill(0x55, 40); // the header survives, the pixel data does not
    const messages = [
      { role: 'system', content: 'Look.' },
      {
        role: 'user',
        content: [{ type: 'text', text: 'Compare' }, imagePart(dataUrl(png)), imagePart(dataUrl(corrupt))],
      },
    ];
    await expect400(vision, messages, {
      code: 'DAWN_ERR_IMAGE_UNDECODABLE',
      param: 'messages[1].content[2].image_url',
    });
    await expect400(vision, userTurn(dataUrl(new TextEncoder().encode('not an image at all'))), {
      code: 'DAWN_ERR_IMAGE_UNDECODABLE',
    });
  });

  it('an image the processor cannot take (aspect ratio over 200) is a 400 naming the part', async () => {
    const sliver = await sharp({ create: { width: 402, height: 2, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    await expect400(vision, userTurn(dataUrl(png), dataUrl(sliver)), {
      code: 'DAWN_ERR_IMAGE_ASPECT',
      param: 'messages[0].content[1].image_url',
    });
  });

  it('oversized, disallowed and unreachable images are 400s', async () => {
    const allowed = join(root, 'allowed');
    const cases: [string, Record<string, unknown>][] = [
      [dataUrl(new Uint8Array(20 * 1024)), { code: 'DAWN_ERR_API_MEDIA_TOO_LARGE' }],
      [`${httpBase}/huge.png`, { code: 'DAWN_ERR_API_MEDIA_TOO_LARGE' }],
      [pathToFileURL(join(root, 'outside.png')).href, { code: 'DAWN_ERR_API_MEDIA_FORBIDDEN' }],
      [`${pathToFileURL(allowed).href}/../outside.png`, { code: 'DAWN_ERR_API_MEDIA_FORBIDDEN' }],
      [pathToFileURL(join(allowed, 'link-out.png')).href, { code: 'DAWN_ERR_API_MEDIA_FORBIDDEN' }],
      [`${httpBase}/stall.png`, { code: 'DAWN_ERR_API_MEDIA_FETCH', message: expect.stringContaining('timed out') }],
      [`${httpBase}/missing.png`, { code: 'DAWN_ERR_API_MEDIA_FETCH', message: expect.stringContaining('HTTP 404') }],
      ['s3://bucket/key.png', { code: 'DAWN_ERR_API_MEDIA_URL' }],
    ];
    for (const [url, error] of cases)
      await expect400(vision, userTurn(url), { param: 'messages[0].content[0].image_url', ...error });
  });

  it('an <|image_pad|> typed as text does not smuggle in a placeholder', async () => {
    const messages = [
      { role: 'user', content: [imagePart(dataUrl(png)), { type: 'text', text: 'and <|image_pad|> here' }] },
    ];
    await expect400(vision, messages, { code: 'DAWN_ERR_IMAGE_PLACEHOLDERS' });
  });

  it('/tokenize counts an image as the tokens it expands to', async () => {
    const res = await vision.app.inject({
      method: 'POST',
      url: '/tokenize',
      payload: { model: MODEL_NAME, messages: userTurn(dataUrl(png)), add_generation_prompt: true },
    });
    expect(res.json()).toMatchObject({ count: golden.prompt_ids.length, tokens: golden.prompt_ids });
  });

  it('/metrics counts processed images by source, their preprocessing time, and the mm cache', async () => {
    const res = await vision.app.inject({ method: 'GET', url: '/metrics' });
    const text = res.body;
    const count = (source: string) =>
      Number(
        new RegExp(
          `^dawnllm:images_processed_total\\{model_name="${MODEL_NAME}",source="${source}"\\} (\\d+)`,
          'm',
        ).exec(text)?.[1],
      );
    expect(count('data')).toBeGreaterThanOrEqual(1);
    expect(count('file')).toBeGreaterThanOrEqual(1);
    expect(count('http')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^dawnllm:image_preprocess_seconds_count\{model_name="[^"]+"\} [1-9]/m);
    expect(text).toMatch(/^vllm:mm_cache_queries_total\{model_name="[^"]+"\} 0/m);
    expect(text).toMatch(/^vllm:mm_cache_hits_total\{model_name="[^"]+"\} 0/m);
  });
});

// The image worker pool against the in-process processor: bit-identical pixel values and hash, the same error
// classes and codes, many images at once matched to their inputs, a responsive main event loop while a 1920x1080
// image is processed, crashed workers replaced, and an idle or closed pool that holds no process open.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../../core/errors.js';
import {
  decodeImage,
  type ImageProcessorConfig,
  ImageInputError,
  type ProcessedImage,
  processImage,
} from '../../../models/qwen3_vl_moe/processor/index.js';
import { parseImageProcessorConfig } from '../../../models/qwen3_vl_moe/processor/config.js';
import {
  closeImageWorkers,
  defaultImageWorkers,
  ImageWorkerPool,
  preprocessInWorker,
} from '../../../models/qwen3_vl_moe/processor/worker_pool.js';
import { seededRandom } from '../../helpers/compare.js';
import { repoRoot } from '../../helpers/fixtures.js';

const tinyDir = join(repoRoot, 'test', 'fixtures', 'qwen3vlmoe-tiny');
const png = readFileSync(join(tinyDir, 'image', 'gradient-100x75.png'));
const tinyCfgFile = join(tinyDir, 'bf16', 'preprocessor_config.json');
const tinyCfg = parseImageProcessorConfig(JSON.parse(readFileSync(tinyCfgFile, 'utf8')), tinyCfgFile);
/** Qwen3-VL-30B-A3B's preprocessor_config: a 1920x1080 image keeps its size (1920x1088, 8160 patches). */
const qwen3vlCfg: ImageProcessorConfig = {
  patchSize: 16,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 65536,
  maxPixels: 16777216,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  rescaleFactor: 1 / 255,
};

async function inProcess(bytes: Uint8Array, cfg: ImageProcessorConfig, where: string): Promise<ProcessedImage> {
  return processImage(await decodeImage(bytes, where), cfg, where);
}

function expectSame(got: ProcessedImage, want: ProcessedImage): void {
  expect(got.gridThw).toEqual(want.gridThw);
  expect(got.numTokens).toBe(want.numTokens);
  expect(got.contentHash).toBe(want.contentHash);
  expect(got.pixelValues).toBeInstanceOf(Float32Array);
  expect(got.pixelValues.length).toBe(want.pixelValues.length);
  const a = Buffer.from(got.pixelValues.buffer, got.pixelValues.byteOffset, got.pixelValues.byteLength);
  const b = Buffer.from(want.pixelValues.buffer, want.pixelValues.byteOffset, want.pixelValues.byteLength);
  expect(a.equals(b)).toBe(true); // bit for bit, NaN payloads and signed zeros included
}

/** A synthetic PNG: smooth gradients plus seeded noise, so resizing has work to do and images differ. */
async function syntheticPng(width: number, height: number, seed: number): Promise<Buffer> {
  const rand = seededRandom(seed);
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      rgb[o] = (x * 255) / width + rand() * 40;
      rgb[o + 1] = (y * 255) / height + rand() * 40;
      rgb[o + 2] = ((x + y + seed * 17) & 255) ^ (rand() * 16);
    }
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** Runs `work` while a 10 ms interval measures how late the main thread serves it: the worst lateness in ms. */
async function worstTimerLateness(work: () => Promise<unknown>): Promise<number> {
  const periodMs = 10;
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - periodMs);
    last = now;
  }, periodMs);
  try {
    await work();
    await new Promise((r) => setTimeout(r, 2 * periodMs)); // a stall at the very end shows up too
  } finally {
    clearInterval(timer);
  }
  return worst;
}

const pools: ImageWorkerPool[] = [];
function pool(options: ConstructorParameters<typeof ImageWorkerPool>[0] = {}): ImageWorkerPool {
  const p = new ImageWorkerPool(options);
  pools.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await closeImageWorkers();
});

describe('image worker pool', () => {
  it('sizes itself from the available cores, 1 to 4', () => {
    expect(defaultImageWorkers()).toBeGreaterThanOrEqual(1);
    expect(defaultImageWorkers()).toBeLessThanOrEqual(4);
    expect(() => new ImageWorkerPool({ size: 0 })).toThrow(/size must be an integer >= 1/);
  });

  it('gives the fixture PNG the in-process result bit for bit (pixel values, grid, hash)', async () => {
    const want = await inProcess(png, tinyCfg, 'fixture');
    expectSame(await preprocessInWorker(png, tinyCfg, 'fixture'), want);
    // The caller's bytes are copied, not moved: the Buffer stays usable.
    expect(png.length).toBeGreaterThan(0);
    expectSame(await preprocessInWorker(png, qwen3vlCfg, 'fixture'), await inProcess(png, qwen3vlCfg, 'fixture'));
  });

  it('returns errors as the same class, code, message and param (HTTP 400s unchanged)', async () => {
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['garbage', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])],
      ['aspect', await syntheticPng(402, 2, 1)], // 201:1, above transformers' 200
      ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')],
    ];
    for (const [name, bytes] of cases) {
      const where = `messages[0].content[${name}].image_url`;
      const want = await inProcess(bytes, tinyCfg, where).then(
        () => null,
        (e: unknown) => e as ImageInputError,
      );
      expect(want, name).toBeInstanceOf(ImageInputError);
      const got = await preprocessInWorker(bytes, tinyCfg, where).then(
        () => null,
        (e: unknown) => e as ImageInputError,
      );
      expect(got, name).toBeInstanceOf(ImageInputError);
      expect(got).toBeInstanceOf(ApiError);
      expect({
        code: got!.code,
        message: got!.message,
        param: got!.param,
        status: got!.status,
        type: got!.type,
      }).toEqual({
        code: want!.code,
        message: want!.message,
        param: want!.param,
        status: 400,
        type: 'invalid_request_error',
      });
    }
  });

  it('processes 8 images at once on 3 workers, each result matched to its input', async () => {
    const images = await Promise.all(
      Array.from({ length: 8 }, (_, i) => syntheticPng(60 + 37 * i, 45 + 23 * ((i * 5) % 8), 100 + i)),
    );
    const want = await Promise.all(images.map((b, i) => inProcess(b, tinyCfg, `img${i}`)));
    expect(new Set(want.map((w) => w.contentHash)).size).toBe(8);
    const p = pool({ size: 3 });
    const got = await Promise.all(images.map((b, i) => p.preprocess(b, tinyCfg, `img${i}`)));
    for (let i = 0; i < 8; i++) expectSame(got[i], want[i]);
  });

  it('keeps the main event loop responsive while a 1920x1080 image is processed', async () => {
    const big = await syntheticPng(1920, 1080, 7);
    const p = pool({ size: 1 });
    await p.preprocess(png, qwen3vlCfg, 'warm-up'); // worker start-up (tsx transform) is not what is measured
    // In process, the synchronous part blocks the loop for its whole duration.
    const rgb = await decodeImage(big, 'big');
    let inProcessMs = Infinity;
    let want: ProcessedImage | null = null;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      want = processImage(rgb, qwen3vlCfg, 'big');
      inProcessMs = Math.min(inProcessMs, performance.now() - t0);
    }
    // Off the loop, a 10 ms timer stays near its period; best of 3 runs against other load on the machine.
    let worstMs = Infinity;
    let got: ProcessedImage | null = null;
    for (let i = 0; i < 3; i++) {
      worstMs = Math.min(
        worstMs,
        await worstTimerLateness(async () => (got = await p.preprocess(big, qwen3vlCfg, 'big'))),
      );
    }
    console.log(
      `1920x1080: processImage in process ${inProcessMs.toFixed(0)} ms (event loop blocked that long); ` +
        `in the worker, worst 10 ms timer lateness ${worstMs.toFixed(1)} ms (best of 3 runs)`,
    );
    expectSame(got!, want!);
    expect(want!.gridThw).toEqual([1, 68, 120]);
    expect(inProcessMs).toBeGreaterThan(40); // else the comparison says nothing
    expect(worstMs).toBeLessThan(inProcessMs / 2);
  });

  it('a worker that dies fails only its own task, with a clear 500, and is replaced', async () => {
    // A stand-in worker speaking the pool's protocol: one byte 0xEE exits, 0xEF throws, anything else answers.
    const source = `
      import { parentPort } from 'node:worker_threads';
      parentPort.on('message', (t) => {
        if (t.bytes[0] === 0xee) process.exit(7);
        if (t.bytes[0] === 0xef) throw new RangeError('boom in the worker');
        const pv = new Float32Array([t.bytes[0]]);
        parentPort.postMessage({ id: t.id, ok: true, image: { pixelValues: pv, gridThw: [1, 1, 1], numTokens: 1,
          contentHash: 'h' + t.bytes[0] } }, [pv.buffer]);
      });`;
    const p = pool({ size: 1, workerUrl: new URL(`data:text/javascript,${encodeURIComponent(source)}`) });
    const settle = (b: number, where: string) =>
      p.preprocess(new Uint8Array([b]), tinyCfg, where).then(
        (r) => r.contentHash,
        (e: unknown) => e as ApiError,
      );
    const [a, crashed, b, thrown, c] = await Promise.all([
      settle(1, 'a'),
      settle(0xee, 'messages[1].content[0].image_url'),
      settle(2, 'b'),
      settle(0xef, 'messages[2].content[0].image_url'),
      settle(3, 'c'),
    ]);
    expect([a, b, c]).toEqual(['h1', 'h2', 'h3']);
    expect(crashed).toBeInstanceOf(ApiError);
    const e1 = crashed as ApiError;
    expect([e1.status, e1.code, e1.param]).toEqual([500, 'DAWN_ERR_IMAGE_WORKER', 'messages[1].content[0].image_url']);
    expect(e1.message).toMatch(/image preprocessing worker died while processing this image \(exit code 7\)/);
    expect((thrown as ApiError).message).toMatch(/worker died .*\(RangeError: boom in the worker\)/);
    expect(p.crashes).toBe(2);
  });

  it('a worker module that cannot load fails the task with a 500 naming the error', async () => {
    const p = pool({ size: 1, workerUrl: pathToFileURL(join(repoRoot, 'no-such-image-worker.js')) });
    const err = await p.preprocess(png, tinyCfg, 'x').catch((e: unknown) => e as ApiError);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(500);
    expect((err as ApiError).message).toMatch(/worker died .*no-such-image-worker/);
  });

  it('close() rejects queued work and ends the workers; the shared pool restarts after closeImageWorkers()', async () => {
    const p = new ImageWorkerPool({ size: 1 });
    const running = p.preprocess(png, tinyCfg, 'a').catch((e: unknown) => e as Error);
    const queued = p.preprocess(png, tinyCfg, 'b').catch((e: unknown) => e as Error);
    await p.close();
    expect(String(await running)).toMatch(/closed/);
    expect(String(await queued)).toMatch(/closed/);
    await expect(p.preprocess(png, tinyCfg, 'c')).rejects.toThrow(/closed/);
    await closeImageWorkers();
    expectSame(await preprocessInWorker(png, tinyCfg, 'again'), await inProcess(png, tinyCfg, 'again'));
  });

  it('an idle pool holds no process open: a script that used it and never closed it exits', async () => {
    const poolUrl = pathToFileURL(join(repoRoot, 'models', 'qwen3_vl_moe', 'processor', 'worker_pool.ts')).href;
    const script = `
      import { readFileSync } from 'node:fs';
      const { preprocessInWorker } = await import(${JSON.stringify(poolUrl)});
      const cfg = ${JSON.stringify(tinyCfg)};
      const r = await preprocessInWorker(readFileSync(${JSON.stringify(join(tinyDir, 'image', 'gradient-100x75.png'))}), cfg, 'x');
      console.log(r.contentHash);`;
    const t0 = performance.now();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: repoRoot, timeout: 30_000 },
    );
    expect(stdout.trim()).toBe((await inProcess(png, tinyCfg, 'x')).contentHash);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});

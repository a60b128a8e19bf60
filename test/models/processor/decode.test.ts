// decodeImage on images made here with sharp: png (RGBA and grey), jpeg (with EXIF orientation), webp, gif (first
// frame of two), and refusals: corrupt bytes, an unsupported format, a decompression bomb, an empty body.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageInputError } from '../../../models/qwen3_vl_moe/processor/index.js';

const W = 20;
const H = 12;

/** RGB bytes with a horizontal red ramp, a vertical green ramp and constant blue. */
function pattern(): Uint8Array {
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) rgb.set([x * 12, y * 20, 90], (y * W + x) * 3);
  }
  return rgb;
}

const raw = (rgb: Uint8Array, channels: 3 | 4, width = W, height = H) =>
  sharp(rgb, { raw: { width, height, channels } });

async function expectRejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageInputError);
  expect((err as ImageInputError).code).toBe(code);
  expect((err as ImageInputError).status).toBe(400);
  expect((err as Error).message).toMatch(re);
}

describe('decodeImage', () => {
  const rgb = pattern();

  it('png with alpha: alpha is dropped, not blended (PIL convert("RGB"))', async () => {
    const rgba = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++)
      rgba.set([rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], i % 3 === 0 ? 0 : 128], i * 4);
    const png = await raw(rgba, 4).png().toBuffer();
    const img = await decodeImage(png, 'messages[0].content[1]');
    expect([img.width, img.height]).toEqual([W, H]);
    expect(Array.from(img.rgb)).toEqual(Array.from(rgb));
  });

  it('grey png becomes three equal channels', async () => {
    const png = await raw(rgb, 3).greyscale().png().toBuffer();
    const img = await decodeImage(png, 'grey');
    expect(img.rgb.length).toBe(W * H * 3);
    for (let i = 0; i < W * H; i++) {
      expect(img.rgb[i * 3]).toBe(img.rgb[i * 3 + 1]);
      expect(img.rgb[i * 3]).toBe(img.rgb[i * 3 + 2]);
    }
  });

  it('lossless webp round-trips exactly', async () => {
    const webp = await raw(rgb, 3).webp({ lossless: true }).toBuffer();
    const img = await decodeImage(webp, 'webp');
    expect(Array.from(img.rgb)).toEqual(Array.from(rgb));
  });

  it('jpeg decodes close to the source and applies EXIF orientation', async () => {
    const jpeg = await raw(rgb, 3).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    const img = await decodeImage(jpeg, 'jpeg');
    expect([img.width, img.height]).toEqual([W, H]);
    let maxAbs = 0;
    for (let i = 0; i < rgb.length; i++) maxAbs = Math.max(maxAbs, Math.abs(img.rgb[i] - rgb[i]));
    expect(maxAbs).toBeLessThan(12);
    const rotated = await raw(rgb, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const r = await decodeImage(rotated, 'jpeg rotated');
    expect([r.width, r.height]).toEqual([H, W]);
  });

  it('gif: the first frame only', async () => {
    const frames = new Uint8Array(W * H * 2 * 3);
    for (let i = 0; i < W * H; i++) frames.set([255, 0, 0], i * 3); // frame 0 red
    for (let i = W * H; i < 2 * W * H; i++) frames.set([0, 0, 255], i * 3); // frame 1 blue
    const gif = await sharp(frames, { raw: { width: W, height: 2 * H, channels: 3, pageHeight: H } })
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const img = await decodeImage(gif, 'gif');
    expect([img.width, img.height]).toEqual([W, H]);
    for (let i = 0; i < W * H; i++) expect([img.rgb[i * 3], img.rgb[i * 3 + 2]]).toEqual([255, 0]);
  });

  it('refuses corrupt bytes, naming where and what was found', async () => {
    const junk = Uint8Array.from({ length: 64 }, (_, i) => (i * 73 + 5) % 256);
    await expectRejects(
      decodeImage(junk, 'image_url #2'),
      'DAWN_ERR_IMAGE_UNDECODABLE',
      /^image_url #2: cannot decode the image \(64 bytes starting 05 4e 97/,
    );
    const png = await raw(rgb, 3).png().toBuffer();
    await expectRejects(
      decodeImage(png.subarray(0, 60), 'truncated'),
      'DAWN_ERR_IMAGE_UNDECODABLE',
      /^truncated: cannot decode/,
    );
    await expectRejects(decodeImage(new Uint8Array(0), 'empty'), 'DAWN_ERR_IMAGE_EMPTY', /^empty: the image is empty/);
  });

  it('refuses formats other than png, jpeg, webp and gif', async () => {
    const tiff = await raw(rgb, 3).tiff().toBuffer();
    await expectRejects(
      decodeImage(tiff, 'tiff part'),
      'DAWN_ERR_IMAGE_FORMAT',
      /tiff part: unsupported image format "tiff"/,
    );
  });

  it('refuses a decompression bomb from its header, before decoding', async () => {
    // A 4000x4000 one-colour png is a few kB; with a 1M-pixel limit it must be refused.
    const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    expect(big.length).toBeLessThan(200_000);
    await expectRejects(
      decodeImage(big, 'bomb', { maxInputPixels: 1_000_000 }),
      'DAWN_ERR_IMAGE_TOO_LARGE',
      /bomb: the image is 4000x4000 = 16000000 pixels, above the limit of 1000000/,
    );
  });
});

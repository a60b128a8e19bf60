// Images for `dawnllm bench serve` chat requests, in the spirit of vLLM's multimodal benchmark datasets: a user's
// PNG/JPEG/WebP file, or seeded synthetic screenshots (title bar, sidebar, cards with rows of glyph-like text and a
// noisy picture) so the encoded size is near a real screenshot's, which a flat colour's few hundred bytes are not.
// Every request gets its own synthetic images, so the server's encoded-image and prefix caches cannot serve a
// repeat; a file is the same picture in every request.
import { readFileSync } from 'node:fs';
import { seededRandom } from './dataset.js';
import { BenchError } from './errors.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface BenchImage {
  /** data:image/...;base64,... as the request's image_url carries it. */
  readonly dataUrl: string;
  readonly width: number;
  readonly height: number;
  /** Encoded bytes (before base64). */
  readonly bytes: number;
  readonly format: ImageFormat;
}

export type ImageSpec = { readonly kind: 'file'; readonly path: string } | SyntheticSpec;

export interface SyntheticSpec {
  readonly kind: 'synthetic';
  readonly width: number;
  readonly height: number;
}

/** The largest side --image-size takes (a 16K screenshot is far past any vision processor's resize bound). */
export const MAX_SYNTHETIC_SIDE = 16384;

/** "1280x720" → { width: 1280, height: 720 }; null when malformed or out of range. */
export function parseImageSize(text: string): { width: number; height: number } | null {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!match) return null;
  const [width, height] = [Number(match[1]), Number(match[2])];
  const ok = (n: number) => n >= 1 && n <= MAX_SYNTHETIC_SIDE;
  return ok(width) && ok(height) ? { width, height } : null;
}

/** The format from the file's magic bytes (not its name); null for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  const ascii = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString('latin1');
  if (bytes.length >= 8 && ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return null;
}

export async function loadImageFile(path: string): Promise<BenchImage> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new BenchError(
      'DAWN_ERR_BENCH_IMAGE',
      `bench serve: cannot read --image ${path}: ${(error as Error).message}`,
    );
  }
  const format = sniffImageFormat(bytes);
  if (format === null)
    throw new BenchError('DAWN_ERR_BENCH_IMAGE', `bench serve: --image ${path} is not a PNG, JPEG or WebP file`, {
      hint: 'the format is read from the file content, not its name',
    });
  let width: number | undefined;
  let height: number | undefined;
  try {
    const sharp = (await import('sharp')).default; // loaded only for image runs
    ({ width, height } = await sharp(bytes).metadata());
  } catch (error) {
    throw new BenchError(
      'DAWN_ERR_BENCH_IMAGE',
      `bench serve: --image ${path} looks like ${format} but does not decode: ${(error as Error).message}`,
    );
  }
  if (!width || !height)
    throw new BenchError('DAWN_ERR_BENCH_IMAGE', `bench serve: --image ${path} has no width/height`);
  return { dataUrl: toDataUrl(bytes, format), width, height, bytes: bytes.length, format };
}

/**
 * `sets` lists of `perRequest` images: one file repeated everywhere, or distinct synthetic screenshots
 * (seeded by `seed`, the set and the position in it, so a run is repeatable).
 */
export async function benchImages(
  spec: ImageSpec,
  sets: number,
  perRequest: number,
  seed: number,
): Promise<BenchImage[][]> {
  if (spec.kind === 'file') {
    const image = await loadImageFile(spec.path);
    const set = new Array<BenchImage>(perRequest).fill(image);
    return Array.from({ length: sets }, () => set);
  }
  const out: BenchImage[][] = [];
  for (let s = 0; s < sets; s++) {
    const set: BenchImage[] = [];
    for (let k = 0; k < perRequest; k++) {
      const png = await syntheticScreenshot(spec.width, spec.height, mixSeed(seed, s * perRequest + k));
      set.push({
        dataUrl: toDataUrl(png, 'png'),
        width: spec.width,
        height: spec.height,
        bytes: png.length,
        format: 'png',
      });
    }
    out.push(set);
  }
  return out;
}

function toDataUrl(bytes: Uint8Array, format: ImageFormat): string {
  return `data:image/${format};base64,${Buffer.from(bytes).toString('base64')}`;
}

function mixSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

type Rgb = readonly [number, number, number];

/** A screenshot-like PNG of exactly width × height, the same bytes for the same seed. */
export async function syntheticScreenshot(width: number, height: number, seed: number): Promise<Buffer> {
  const rand = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const px = Buffer.alloc(width * height * 3);
  const fill = (x0: number, y0: number, w: number, h: number, c: Rgb) => {
    const xa = Math.max(0, Math.floor(x0));
    const xb = Math.min(width, Math.floor(x0 + w));
    for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.floor(y0 + h)); y++)
      for (let x = xa; x < xb; x++) px.set(c, (y * width + x) * 3);
  };
  const light = (): Rgb => [int(228, 252), int(228, 252), int(228, 252)];
  const dark = (): Rgb => [int(20, 80), int(20, 80), int(30, 90)];
  const accent = (): Rgb => [int(30, 220), int(30, 220), int(30, 220)];
  // Glyph cell height: 8 px on a 720-line screen, as small UI text is.
  const unit = Math.max(3, Math.round(Math.min(width, height) / 90));
  const glyphW = Math.max(2, Math.round(unit * 0.6));

  /** Rows of "words": runs of random 3×5 glyphs, ragged right like prose. */
  const text = (x0: number, y0: number, w: number, h: number, color: Rgb) => {
    const cellW = glyphW / 3;
    const cellH = unit / 5;
    for (let y = y0 + unit; y + unit <= y0 + h - unit / 2; y += Math.round(unit * 1.8)) {
      const lineEnd = x0 + w * (0.45 + 0.5 * rand());
      for (let x = x0 + unit; x + glyphW < lineEnd;) {
        const letters = int(1, 9);
        for (let l = 0; l < letters && x + glyphW < lineEnd; l++, x += glyphW + 1) {
          const bits = int(1, 0x7fff);
          for (let b = 0; b < 15; b++)
            if (bits & (1 << b)) fill(x + (b % 3) * cellW, y + Math.floor(b / 3) * cellH, cellW, cellH, color);
        }
        x += glyphW + 2;
      }
    }
  };
  /** A photo-like block: a smooth two-colour gradient with per-pixel noise. */
  const picture = (x0: number, y0: number, w: number, h: number) => {
    const [a, b] = [accent(), accent()];
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++)
      for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++) {
        const t = ((x - x0) / w + (y - y0) / h) / 2;
        for (let c = 0; c < 3; c++) {
          const v = a[c] + (b[c] - a[c]) * t + (rand() - 0.5) * 12;
          px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
  };

  fill(0, 0, width, height, light());
  const barH = Math.min(height, unit * 4);
  fill(0, 0, width, barH, dark());
  text(0, 0, width * 0.4, barH, light());
  const sideW = Math.round(width * (0.14 + 0.08 * rand()));
  fill(0, barH, sideW, height - barH, light());
  fill(sideW, barH, 1, height - barH, dark());
  text(0, barH, sideW, height - barH, dark());
  // Cards on a grid over the content area, each a border, a coloured header with text, and text or a picture.
  const [cols, rows] = [int(1, 3), int(1, 3)];
  const [areaX, areaY] = [sideW + unit * 2, barH + unit * 2];
  const cardW = (width - areaX - unit * 2) / cols - unit * 2;
  const cardH = (height - areaY - unit * 2) / rows - unit * 2;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const x = Math.round(areaX + c * (cardW + unit * 2));
      const y = Math.round(areaY + r * (cardH + unit * 2));
      if (cardW < unit * 4 || cardH < unit * 6) continue;
      fill(x, y, cardW, cardH, [200, 200, 205]);
      fill(x + 1, y + 1, cardW - 2, cardH - 2, [int(245, 255), int(245, 255), int(245, 255)]);
      const headerH = unit * 3;
      const header = accent();
      fill(x + 1, y + 1, cardW - 2, headerH, header);
      text(x, y, cardW * 0.6, headerH, header[0] + header[1] + header[2] > 380 ? dark() : light());
      const bodyY = y + headerH + 1;
      if (rand() < 0.3)
        picture(x + unit, bodyY + unit, Math.round(cardW - unit * 2), Math.round(cardH - headerH - unit * 2));
      else text(x, bodyY, cardW, cardH - headerH - 1, dark());
    }
  const sharp = (await import('sharp')).default; // loaded only for image runs
  return sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

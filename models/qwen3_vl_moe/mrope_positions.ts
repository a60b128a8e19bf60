// M-RoPE positions of a prompt with images, as Qwen3-VL's get_rope_index computes them (transformers,
// modeling_qwen3_vl.py): text counts up with t = h = w; an image's tokens, laid out row by row on its merged grid,
// get (s + frame, s + row, s + col) where s is the position the image starts at; the text after it resumes at
// s + max(t, h, w). Every later token is therefore `index - shift` with shift the tokens the images saved, and the
// decode positions continue from the prompt's largest position + 1: position = index + ropeDelta (ropeDelta ≤ 0).
// Positions are a function of the token index alone, so the runner computes them for any chunk or decode step.
import { ModelError } from '../../core/errors.js';

export type MropePosition = [number, number, number];

/** One image's placeholder run: its first token's index and its grid after merging (t, h/merge, w/merge). */
export interface MropeSpan {
  readonly tokenStart: number;
  readonly grid: readonly [number, number, number];
}

interface PlacedSpan {
  start: number;
  end: number;
  /** h·w and w of the merged grid. */
  area: number;
  width: number;
  /** The position of the image's first token (t, h and w offsets add to it). */
  base: number;
  /** index - position for the text after this image. */
  shiftAfter: number;
}

export class MropePositions {
  /** Added to a token index after the last image to get its position (HF's mrope_position_deltas). */
  readonly ropeDelta: number;
  private readonly spans: PlacedSpan[] = [];

  /** `spans` in prompt order, disjoint; each covers t·h·w tokens. */
  constructor(spans: readonly MropeSpan[]) {
    let shift = 0;
    let prevEnd = 0;
    for (const [i, s] of spans.entries()) {
      const [t, h, w] = s.grid;
      if (![t, h, w].every((d) => Number.isSafeInteger(d) && d >= 1))
        throw new ModelError(
          'DAWN_ERR_MODEL_INPUT',
          `M-RoPE: image ${i} has grid [${s.grid}], expected positive integers`,
        );
      if (!(Number.isSafeInteger(s.tokenStart) && s.tokenStart >= prevEnd))
        throw new ModelError(
          'DAWN_ERR_MODEL_INPUT',
          `M-RoPE: image ${i} starts at token ${s.tokenStart}, expected an integer ≥ ${prevEnd} (images in prompt order, disjoint)`,
        );
      const numTokens = t * h * w;
      const base = s.tokenStart - shift;
      shift += numTokens - Math.max(t, h, w);
      prevEnd = s.tokenStart + numTokens;
      this.spans.push({ start: s.tokenStart, end: prevEnd, area: h * w, width: w, base, shiftAfter: shift });
    }
    this.ropeDelta = 0 - shift; // not -shift: no -0 for text-only prompts
  }

  /** The position of the token at `index` (prompt or output). */
  at(index: number): MropePosition {
    let shift = 0;
    for (const s of this.spans) {
      if (index < s.start) break;
      if (index < s.end) {
        const j = index - s.start;
        const inFrame = j % s.area;
        return [s.base + Math.floor(j / s.area), s.base + Math.floor(inFrame / s.width), s.base + (inFrame % s.width)];
      }
      shift = s.shiftAfter;
    }
    const p = index - shift;
    return [p, p, p];
  }

  /** Positions of tokens [start, end). */
  range(start: number, end: number): MropePosition[] {
    const out: MropePosition[] = [];
    for (let i = start; i < end; i++) out.push(this.at(i));
    return out;
  }
}

// The chat template writes one <|image_pad|> per image; the model needs numTokens of them, one per merged patch.
import { ImageInputError } from './errors.js';
import type { ProcessedImage } from './types.js';

export interface ExpandedPrompt {
  ids: number[];
  /** Where each image's placeholder run sits in `ids`, in image order. */
  spans: { tokenStart: number; numTokens: number }[];
}

export function expandImagePads(
  ids: readonly number[],
  imagePadId: number,
  images: readonly ProcessedImage[],
): ExpandedPrompt {
  let pads = 0;
  for (const id of ids) if (id === imagePadId) pads++;
  if (pads !== images.length) {
    throw new ImageInputError(
      'DAWN_ERR_IMAGE_PLACEHOLDERS',
      `the prompt has ${pads} image placeholder token(s) (id ${imagePadId}) but ${images.length} image(s) were given`,
      'messages',
    );
  }
  const out: number[] = [];
  const spans: ExpandedPrompt['spans'] = [];
  let next = 0;
  for (const id of ids) {
    if (id !== imagePadId) {
      out.push(id);
      continue;
    }
    const n = images[next++].numTokens;
    spans.push({ tokenStart: out.length, numTokens: n });
    for (let i = 0; i < n; i++) out.push(imagePadId);
  }
  return { ids: out, spans };
}

// The chat template writes one <|image_pad|> per image; the model needs one per merged vision patch. This expands
// the k-th pad into counts[k] pads, as transformers' processor does. (Qwen-VL: count = t·h·w / merge², e.g.
// grid_thw [1,4,6] with merge 2 gives 6.) Pads are counted on token ids, after tokenization.
import { ModelError } from '../../core/errors.js';

/** `ids` with its k-th `placeholderId` repeated counts[k] times; the number of placeholders must equal counts.length. */
export function expandPlaceholders(ids: readonly number[], placeholderId: number, counts: readonly number[]): number[] {
  const found = ids.reduce((n, id) => n + (id === placeholderId ? 1 : 0), 0);
  if (found !== counts.length) {
    throw new ModelError(
      'DAWN_ERR_MODEL_PLACEHOLDER_COUNT',
      `expandPlaceholders: prompt has ${found} placeholder token(s) ${placeholderId}, expected ${counts.length} (one per image or video given)`,
    );
  }
  const bad = counts.findIndex((c) => !Number.isInteger(c) || c < 1);
  if (bad >= 0) {
    throw new ModelError(
      'DAWN_ERR_MODEL_PLACEHOLDER_COUNT',
      `expandPlaceholders: counts[${bad}] is ${counts[bad]}, expected an integer ≥ 1`,
    );
  }
  const out: number[] = [];
  let k = 0;
  for (const id of ids) {
    if (id !== placeholderId) out.push(id);
    else for (let i = counts[k++]; i > 0; i--) out.push(id);
  }
  return out;
}

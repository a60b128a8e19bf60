// Vision features in the text forward, as transformers' Qwen3-VL injects them: at image-token rows the embeddings
// are replaced by the merged vision features, and after each of the first len(deepstack) decoder layers the
// deepstack features of those rows are added to the residual stream. The features are staged in one buffer per
// step and moved by row runs (a copy for the embeddings, an add for deepstack), bound per step: image steps are
// prefill steps, rare next to decode.
import { ModelError } from '../../core/errors.js';
import { Cast, type ResidualAdd } from '../../kernels/elementwise.js';
import { createBuffer, writeBuffer } from '../../kernels/gpu/buffers.js';
import type { Gpu } from '../../kernels/gpu/device.js';
import type { Dispatch } from '../../kernels/gpu/dispatch.js';

/** One sequence's vision rows: indices among its new tokens, features [rows, H] and deepstack [layer][rows, H]. */
export interface SeqVisual {
  rows: readonly number[];
  embeds: Float32Array;
  deepstack?: readonly Float32Array[];
}

export interface VisualDispatches {
  /** After the embedding. */
  embed: Dispatch[];
  /** After decoder layer l. */
  layers: Dispatch[][];
}

export class ForwardVisual {
  private constructor(
    private readonly gpu: Gpu,
    private readonly cast: Cast,
    private readonly add: ResidualAdd,
    /** f32 [1 + maxDeepstack][maxTokens, H]: embeds, then each deepstack layer. */
    private readonly staging: GPUBuffer,
    private readonly hidden: GPUBuffer,
    private readonly H: number,
    private readonly maxTokens: number,
    private readonly maxDeepstack: number,
  ) {}

  static async create(
    gpu: Gpu,
    o: { add: ResidualAdd; hidden: GPUBuffer; H: number; maxTokens: number; maxDeepstack: number },
  ): Promise<ForwardVisual> {
    const rowBytes = o.H * 4;
    if (rowBytes % gpu.caps.minStorageBufferOffsetAlignment)
      throw new ModelError(
        'DAWN_ERR_MODEL_VISUAL',
        `vision rows of ${rowBytes} bytes are not multiples of the device's ${gpu.caps.minStorageBufferOffsetAlignment}-byte binding alignment`,
      );
    const staging = createBuffer(gpu, 'qwen3_vl_moe/visual_staging', (1 + o.maxDeepstack) * o.maxTokens * rowBytes);
    const cast = await Cast.create(gpu, { src: 'f32', dst: 'f32' });
    return new ForwardVisual(gpu, cast, o.add, staging, o.hidden, o.H, o.maxTokens, o.maxDeepstack);
  }

  /**
   * Stages the features of every sequence (`starts[i]`: the step row of sequence i's first new token) and binds the
   * copies and adds for this step.
   */
  prepare(visuals: readonly (SeqVisual | undefined)[], starts: readonly number[], numLayers: number) {
    const H = this.H;
    const rows: number[] = [];
    const parts: { embeds: Float32Array; deepstack: readonly Float32Array[]; n: number }[] = [];
    visuals.forEach((v, i) => {
      if (!v) return;
      const n = v.rows.length;
      const ds = v.deepstack ?? [];
      if (v.embeds.length !== n * H || ds.some((d) => d.length !== n * H))
        throw new ModelError(
          'DAWN_ERR_MODEL_VISUAL',
          `sequence ${i}: ${n} vision rows need embeds and deepstack of ${n}×${H} floats, got ${v.embeds.length} and [${ds.map((d) => d.length)}]`,
        );
      if (ds.length > Math.min(this.maxDeepstack, numLayers))
        throw new ModelError(
          'DAWN_ERR_MODEL_VISUAL',
          `sequence ${i}: ${ds.length} deepstack layers, the model takes at most ${Math.min(this.maxDeepstack, numLayers)}`,
        );
      for (const r of v.rows) rows.push(starts[i] + r);
      parts.push({ embeds: v.embeds, deepstack: ds, n });
    });
    const out: VisualDispatches = { embed: [], layers: Array.from({ length: numLayers }, () => []) };
    if (rows.length === 0) return out;
    if (rows.length > this.maxTokens)
      throw new ModelError('DAWN_ERR_MODEL_VISUAL', `${rows.length} vision rows, at most ${this.maxTokens} per step`);
    const depth = Math.max(...parts.map((p) => p.deepstack.length));
    const staged = new Float32Array((1 + depth) * this.maxTokens * H);
    let p0 = 0;
    for (const part of parts) {
      staged.set(part.embeds, p0 * H);
      part.deepstack.forEach((d, l) => staged.set(d, ((1 + l) * this.maxTokens + p0) * H));
      p0 += part.n;
    }
    writeBuffer(this.gpu, this.staging, 0, staged);
    // Runs of consecutive step rows (staged consecutively too) move as one slice.
    const runs: { row: number; at: number; n: number }[] = [];
    rows.forEach((row, at) => {
      const last = runs[runs.length - 1];
      if (last && last.row + last.n === row) last.n++;
      else runs.push({ row, at, n: 1 });
    });
    const bytes = H * 4;
    const hiddenSlice = (r: { row: number; n: number }) => ({
      buffer: this.hidden,
      offset: r.row * bytes,
      size: r.n * bytes,
    });
    const stagedSlice = (layer: number, r: { at: number; n: number }) => ({
      buffer: this.staging,
      offset: (layer * this.maxTokens + r.at) * bytes,
      size: r.n * bytes,
    });
    for (const r of runs)
      out.embed.push(this.cast.bind({ x: stagedSlice(0, r), out: hiddenSlice(r) }, r.n * H, 'visual/embeds'));
    // Sequences with fewer deepstack layers than `depth` get zeros from the staging array for the rest.
    for (let l = 0; l < depth; l++)
      for (const r of runs)
        out.layers[l].push(
          this.add.bind({ h: hiddenSlice(r), y: stagedSlice(1 + l, r) }, r.n * H, `visual/deepstack${l}`),
        );
    return out;
  }

  destroy(): void {
    this.staging.destroy();
  }
}

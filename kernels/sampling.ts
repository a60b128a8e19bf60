// sampling wrapper: buffers sized once for the largest batch, bound once; each step `setRows` writes the per-row
// parameters (one small buffer), the penalty entries (only rows with penalties or suppressed tokens) and the
// globals, then `encode` records the dispatches and `read` brings back SAMPLING_OUT_WORDS words per row: the token,
// its logprob and rank, and the top-N, never the logits. See sampling.wgsl for the math and
// kernels/reference/sampling.ts for the CPU version.
// Dispatches per step: penalize (only when some row has penalties or suppressed tokens), scan, combine, emit, plus
// `step` × the neediest row's count: 0 for greedy or plain temperature without logprobs, 1 with logprobs of the
// chosen token only, 18 with top-N logprobs, plus 8 for top-k, 9 for top-p and 1 for the race of a filtered row.
// logits: [rows, vocab] f32, row i holds the logits of the i-th row given to setRows.
import { KernelError } from '../core/errors.js';
import { createBuffer, createUniform, readBuffer } from './gpu/buffers.js';
import type { Gpu } from './gpu/device.js';
import { type BufferSlice, bindingResource, type Dispatch, grid, sliceBytes } from './gpu/dispatch.js';
import { loadWgsl } from './gpu/wgsl_source.js';

/** The most top logprobs one row may ask for (the engine's MAX_LOGPROBS). */
export const SAMPLING_MAX_TOP = 20;
/** u32 words per row in the output buffer. */
export const SAMPLING_OUT_WORDS = 48;
const ROW_WORDS = 16;
const STATE_WORDS = 16;
const ENTRY_POINTS = ['penalize', 'scan', 'combine', 'step', 'emit'] as const;
const F_LOGPROBS = 1;
const F_RAW = 2;
const F_PEN = 4;
const F_GREEDY = 8;
const F_FILTER = 16;
const E_PROMPT = 1;
const E_SUPPRESS = 2;
/** GPU logprobs at or below this are masked tokens (the kernel's finite stand-in for -inf). */
const MASKED_LOGPROB = -1e38;

/** One row to sample; field names follow engine/sampling_params.ts so a SampleSpec maps over directly. */
export interface SampleRow {
  /** 0: greedy (argmax of the penalized logits, lowest index on ties; the filters are ignored). */
  temperature: number;
  /** null (or ≥ vocab): no top-k cut. */
  topK: number | null;
  /** 1: off. */
  topP: number;
  /** 0: off. */
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Any safe integer; the draw depends on (seed, step, token id) only, not on the row's place in the batch. */
  seed: number;
  /** Which output token this is (SampleSpec.outputIndex). */
  step: number;
  /** null: no logprobs; 0: the chosen token's only; up to SAMPLING_MAX_TOP. */
  numLogprobs: number | null;
  /** What the logprobs describe: 'processed' (after penalties and temperature; default) or 'raw' (the model's). */
  logprobSource?: 'processed' | 'raw';
  /** Tokens that must not be picked (set to -inf before the penalties, as vLLM's min_tokens processor does). */
  suppressTokenIds?: readonly number[];
  /** Prompt then outputs so far, for the penalties (read only when a penalty is active). */
  tokenIds?: readonly number[];
  numPromptTokens?: number;
}

/** Greedy decoding (temperature 0, no filters or penalties) at output step `step`. */
export function greedySampleRow(step: number): SampleRow {
  return {
    temperature: 0,
    topK: null,
    topP: 1,
    minP: 0,
    repetitionPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    seed: 0,
    step,
    numLogprobs: null,
  };
}

export interface SampledTopLogprob {
  tokenId: number;
  logprob: number;
}

export interface SampledLogprobs {
  tokenId: number;
  logprob: number;
  /** vLLM's rank: how many tokens have a logprob ≥ the chosen one's. */
  rank: number;
  top: SampledTopLogprob[];
}

export interface SampleResult {
  tokenId: number;
  logprobs: SampledLogprobs | null;
}

export interface SamplingVariant {
  /** Threads per workgroup (a power of two); default 256 (or the device's maximum when lower). */
  wgSize?: number;
  /** Tokens per scan workgroup; default 4096. */
  chunk?: number;
}

export interface SamplingConfig {
  /** The most rows one step may sample. */
  maxRows: number;
  vocabSize: number;
  /** Capacity for (row, token) penalty entries per step; default maxRows · 8192. */
  maxPenaltyEntries?: number;
}

/** Seed as two u32 words (two's complement for negative seeds). */
export function splitSeed(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

export class Sampling {
  readonly name = 'sampling';
  private constructor(
    private readonly gpu: Gpu,
    readonly pipelines: Record<(typeof ENTRY_POINTS)[number], GPUComputePipeline>,
    readonly wgSize: number,
    readonly chunk: number,
  ) {}

  static async create(gpu: Gpu, variant: SamplingVariant = {}): Promise<Sampling> {
    // The step kernel holds 18 words of workgroup memory per thread (sampling.wgsl red16, red_v, red_u).
    const fits = (wg: number) => wg * 72 + 512 <= gpu.caps.maxComputeWorkgroupStorageSize;
    let wgSize = variant.wgSize ?? Math.min(256, gpu.caps.maxComputeInvocationsPerWorkgroup);
    while (variant.wgSize === undefined && wgSize > 32 && !fits(wgSize)) wgSize /= 2;
    const chunk = variant.chunk ?? 4096;
    if (wgSize < 2 || wgSize & (wgSize - 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `sampling: wgSize ${wgSize} must be a power of two ≥ 2`);
    if (!fits(wgSize))
      throw new KernelError(
        'DAWN_ERR_KERNEL_VARIANT',
        `sampling: wgSize ${wgSize} needs ${wgSize * 72 + 512} bytes of workgroup memory, the device has ${gpu.caps.maxComputeWorkgroupStorageSize}`,
      );
    if (!(Number.isInteger(chunk) && chunk >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_VARIANT', `sampling: chunk ${chunk} must be an integer ≥ 1`);
    const code = loadWgsl(new URL('./sampling.wgsl', import.meta.url));
    const constants = { WG: wgSize, CHUNK: chunk };
    const built = await Promise.all(
      ENTRY_POINTS.map((entryPoint) =>
        gpu.pipelines.get({ label: `sampling_${entryPoint}`, code, entryPoint, constants }),
      ),
    );
    const pipelines = Object.fromEntries(ENTRY_POINTS.map((e, i) => [e, built[i]])) as Sampling['pipelines'];
    return new Sampling(gpu, pipelines, wgSize, chunk);
  }

  /** Allocates the step buffers for `config` and binds `logits` (at least maxRows · vocabSize f32). */
  bind(logits: BufferSlice, config: SamplingConfig, label = 'sampling'): SamplingBinding {
    const { maxRows, vocabSize } = config;
    const maxEntries = config.maxPenaltyEntries ?? maxRows * 8192;
    if (!(Number.isInteger(maxRows) && maxRows >= 1 && maxRows <= this.gpu.caps.maxComputeWorkgroupsPerDimension))
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: maxRows ${maxRows} must be an integer in [1, ${this.gpu.caps.maxComputeWorkgroupsPerDimension}]`,
      );
    // Counts are summed in f32, exact below 2^24.
    if (!(Number.isInteger(vocabSize) && vocabSize >= 1 && vocabSize < 2 ** 24))
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: vocabSize ${vocabSize} must be an integer in [1, 2^24)`,
      );
    if (!(Number.isInteger(maxEntries) && maxEntries >= 1))
      throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: maxPenaltyEntries ${maxEntries} must be ≥ 1`);
    const need = maxRows * vocabSize * 4;
    if (sliceBytes(logits) < need)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: logits has ${sliceBytes(logits)} bytes, expected at least ${need} for (${maxRows}, ${vocabSize}) f32`,
      );
    if (need > this.gpu.caps.maxStorageBufferBindingSize)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: (${maxRows}, ${vocabSize}) f32 is ${need} bytes, a storage binding holds at most ${this.gpu.caps.maxStorageBufferBindingSize}`,
      );
    return new SamplingBinding(this.gpu, this, logits, { maxRows, vocabSize, maxPenaltyEntries: maxEntries }, label);
  }
}

/** A bound sampler: call setRows, record encode into the step's pass (after the logits), submit, then read. */
export class SamplingBinding implements Dispatch {
  readonly output: GPUBuffer;
  private readonly globals: GPUBuffer;
  private readonly rowsBuffer: GPUBuffer;
  private readonly entriesBuffer: GPUBuffer;
  private readonly owned: GPUBuffer[];
  private readonly groups: Record<(typeof ENTRY_POINTS)[number], GPUBindGroup>;
  private readonly numChunks: number;
  private numRows = 0;
  private numEntries = 0;
  private numSteps = 0;
  private entryGrid: [number, number] = [1, 1];
  private stamp = 0;
  private readonly rowWords: Uint32Array;
  private readonly rowFloats: Float32Array;

  constructor(
    private readonly gpu: Gpu,
    private readonly kernel: Sampling,
    logits: BufferSlice,
    readonly config: Required<SamplingConfig>,
    readonly label: string,
  ) {
    const { maxRows, vocabSize, maxPenaltyEntries } = config;
    this.numChunks = Math.ceil(vocabSize / kernel.chunk);
    this.globals = createUniform(gpu, `${label}/globals`, new Uint32Array(8));
    this.rowsBuffer = createBuffer(gpu, `${label}/rows`, maxRows * ROW_WORDS * 4);
    this.entriesBuffer = createBuffer(gpu, `${label}/entries`, maxPenaltyEntries * 16);
    const pen = createBuffer(gpu, `${label}/pen`, maxRows * vocabSize * 4);
    const stamps = createBuffer(gpu, `${label}/stamps`, maxRows * vocabSize * 4);
    const partials = createBuffer(gpu, `${label}/partials`, maxRows * this.numChunks * 32);
    this.output = createBuffer(gpu, `${label}/out`, maxRows * SAMPLING_OUT_WORDS * 4);
    const states = createBuffer(gpu, `${label}/states`, maxRows * STATE_WORDS * 4);
    this.owned = [this.globals, this.rowsBuffer, this.entriesBuffer, pen, stamps, partials, this.output, states];
    const slots: BufferSlice[] = [
      this.globals,
      this.rowsBuffer,
      logits,
      pen,
      stamps,
      this.entriesBuffer,
      partials,
      this.output,
      states,
    ];
    const p = kernel.pipelines;
    const group = (name: string, pipeline: GPUComputePipeline, bindings: number[]) =>
      gpu.device.createBindGroup({
        label: `${label}/${name}`,
        layout: pipeline.getBindGroupLayout(0),
        entries: bindings.map((binding) => ({ binding, resource: bindingResource(slots[binding]) })),
      });
    this.groups = {
      penalize: group('penalize', p.penalize, [0, 1, 2, 3, 4, 5]),
      scan: group('scan', p.scan, [0, 1, 2, 3, 4, 6]),
      combine: group('combine', p.combine, [0, 1, 2, 3, 4, 6, 8]),
      step: group('step', p.step, [0, 1, 2, 3, 4, 8]),
      emit: group('emit', p.emit, [0, 1, 2, 3, 4, 7, 8]),
    };
    this.rowWords = new Uint32Array(maxRows * ROW_WORDS);
    this.rowFloats = new Float32Array(this.rowWords.buffer);
  }

  /** Rows of the next step (row i samples logits row i); writes the small per-step buffers. */
  setRows(rows: readonly SampleRow[]): void {
    const { maxRows, vocabSize, maxPenaltyEntries } = this.config;
    if (rows.length > maxRows)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${this.label}: ${rows.length} rows, bound for at most ${maxRows}`,
      );
    const entries: number[] = [];
    let numSteps = 0;
    rows.forEach((row, r) => {
      const where = `${this.label}: row ${r}`;
      const w = r * ROW_WORDS;
      const greedy = row.temperature === 0;
      const topK = row.topK !== null && row.topK >= 1 && row.topK < vocabSize ? row.topK : 0;
      const filter = !greedy && (row.minP > 0 || topK > 0 || row.topP < 1);
      if (!(row.temperature >= 0 && Number.isFinite(row.temperature)))
        throw new KernelError('DAWN_ERR_KERNEL_PARAM', `${where}: temperature ${row.temperature}, expected ≥ 0`);
      if (!(row.topP > 0 && row.topP <= 1) || !(row.minP >= 0 && row.minP <= 1))
        throw new KernelError(
          'DAWN_ERR_KERNEL_PARAM',
          `${where}: top_p ${row.topP} (expected (0, 1]) / min_p ${row.minP} (expected [0, 1])`,
        );
      if (!(row.repetitionPenalty > 0))
        throw new KernelError(
          'DAWN_ERR_KERNEL_PARAM',
          `${where}: repetition penalty ${row.repetitionPenalty}, expected > 0`,
        );
      const n = row.numLogprobs;
      if (n !== null && !(Number.isInteger(n) && n >= 0 && n <= SAMPLING_MAX_TOP))
        throw new KernelError(
          'DAWN_ERR_KERNEL_PARAM',
          `${where}: numLogprobs ${n}, expected null or 0..${SAMPLING_MAX_TOP}`,
        );
      if (!(Number.isSafeInteger(row.seed) && Number.isInteger(row.step) && row.step >= 0))
        throw new KernelError(
          'DAWN_ERR_KERNEL_PARAM',
          `${where}: seed ${row.seed} / step ${row.step}, expected integers`,
        );
      const before = entries.length;
      this.penaltyEntries(row, r, entries, where);
      const hasPen = entries.length > before;
      const [seedLo, seedHi] = splitSeed(row.seed);
      this.rowFloats[w] = row.temperature;
      this.rowWords[w + 1] = topK;
      this.rowFloats[w + 2] = row.topP;
      this.rowFloats[w + 3] = row.minP;
      this.rowFloats[w + 4] = row.repetitionPenalty;
      this.rowFloats[w + 5] = row.presencePenalty;
      this.rowFloats[w + 6] = row.frequencyPenalty;
      this.rowWords[w + 7] =
        (n !== null ? F_LOGPROBS : 0) |
        (row.logprobSource === 'raw' ? F_RAW : 0) |
        (hasPen ? F_PEN : 0) |
        (greedy ? F_GREEDY : 0) |
        (filter ? F_FILTER : 0);
      this.rowWords[w + 8] = seedLo;
      this.rowWords[w + 9] = seedHi;
      this.rowWords[w + 10] = row.step >>> 0;
      this.rowWords[w + 11] = n ?? 0;
      // step dispatches this row needs (see sampling.wgsl's states): searches are 8 passes, the rest one each.
      const filterSteps = filter ? (topK > 0 ? 8 : 0) + (row.topP < 1 ? 9 : 0) + 1 : 0;
      const logprobSteps = n === null ? 0 : n > 0 ? 18 : 1;
      numSteps = Math.max(numSteps, filterSteps + logprobSteps);
    });
    const numEntries = entries.length / 4;
    if (numEntries > maxPenaltyEntries)
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${this.label}: ${numEntries} penalty entries this step, bound for at most ${maxPenaltyEntries}`,
        { hint: 'bind with a larger maxPenaltyEntries' },
      );
    this.numRows = rows.length;
    this.numEntries = numEntries;
    this.numSteps = numSteps;
    this.stamp = (this.stamp + 1) >>> 0 || 1; // 0 is what a fresh stamps buffer holds
    const [gx, gy] = grid(Math.ceil(numEntries / this.kernel.wgSize), this.gpu.caps.maxComputeWorkgroupsPerDimension);
    this.entryGrid = [gx, gy];
    const queue = this.gpu.queue;
    if (rows.length) queue.writeBuffer(this.rowsBuffer, 0, this.rowWords, 0, rows.length * ROW_WORDS);
    if (numEntries) queue.writeBuffer(this.entriesBuffer, 0, new Uint32Array(entries));
    queue.writeBuffer(
      this.globals,
      0,
      new Uint32Array([rows.length, vocabSize, this.stamp, numEntries, this.numChunks, gx * this.kernel.wgSize, 0, 0]),
    );
  }

  /** (row, token, output count, flags) for every token the row's penalties or suppression touch. */
  private penaltyEntries(row: SampleRow, r: number, entries: number[], where: string): void {
    const V = this.config.vocabSize;
    const penalized = row.repetitionPenalty !== 1 || row.presencePenalty !== 0 || row.frequencyPenalty !== 0;
    const suppress = row.suppressTokenIds ?? [];
    if (!penalized && suppress.length === 0) return;
    const seen = new Map<number, { count: number; flags: number }>();
    const at = (t: number) => {
      if (!(Number.isInteger(t) && t >= 0 && t < V))
        throw new KernelError('DAWN_ERR_KERNEL_PARAM', `${where}: token id ${t}, expected an integer in [0, ${V})`);
      let e = seen.get(t);
      if (!e) {
        e = { count: 0, flags: 0 };
        seen.set(t, e);
      }
      return e;
    };
    if (penalized) {
      const ids = row.tokenIds ?? [];
      const numPrompt = row.numPromptTokens ?? 0;
      for (let i = 0; i < ids.length; i++) {
        const e = at(ids[i]);
        if (i < numPrompt) e.flags |= E_PROMPT;
        else e.count++;
      }
    }
    for (const t of suppress) at(t).flags |= E_SUPPRESS;
    for (const [t, e] of seen) entries.push(r, t, e.count, e.flags);
  }

  get rows(): number {
    return this.numRows;
  }

  encode(pass: GPUComputePassEncoder): void {
    if (this.numRows === 0) return;
    const p = this.kernel.pipelines;
    if (this.numEntries > 0) {
      pass.setPipeline(p.penalize);
      pass.setBindGroup(0, this.groups.penalize);
      pass.dispatchWorkgroups(this.entryGrid[0], this.entryGrid[1]);
    }
    pass.setPipeline(p.scan);
    pass.setBindGroup(0, this.groups.scan);
    pass.dispatchWorkgroups(this.numChunks, this.numRows);
    pass.setPipeline(p.combine);
    pass.setBindGroup(0, this.groups.combine);
    pass.dispatchWorkgroups(this.numRows);
    if (this.numSteps > 0) {
      pass.setPipeline(p.step);
      pass.setBindGroup(0, this.groups.step);
      for (let i = 0; i < this.numSteps; i++) pass.dispatchWorkgroups(this.numRows);
    }
    pass.setPipeline(p.emit);
    pass.setBindGroup(0, this.groups.emit);
    pass.dispatchWorkgroups(this.numRows);
  }

  /** Reads back the results of the last submitted step (numRows · OUT_WORDS words). */
  async read(): Promise<SampleResult[]> {
    if (this.numRows === 0) return [];
    const raw = await readBuffer(this.gpu, this.output, 0, this.numRows * SAMPLING_OUT_WORDS * 4);
    return decodeSamplingOutput(raw, this.numRows, this.rowWantsLogprobs());
  }

  private rowWantsLogprobs(): boolean[] {
    return Array.from({ length: this.numRows }, (_, r) => (this.rowWords[r * ROW_WORDS + 7] & F_LOGPROBS) !== 0);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

/** Turns the output words of `numRows` rows into results. */
export function decodeSamplingOutput(raw: ArrayBuffer, numRows: number, wantsLogprobs: boolean[]): SampleResult[] {
  const words = new Uint32Array(raw, 0, numRows * SAMPLING_OUT_WORDS);
  const floats = new Float32Array(raw, 0, numRows * SAMPLING_OUT_WORDS);
  const lp = (v: number) => (v <= MASKED_LOGPROB ? -Infinity : v);
  const results: SampleResult[] = [];
  for (let r = 0; r < numRows; r++) {
    const b = r * SAMPLING_OUT_WORDS;
    const tokenId = words[b];
    if (!wantsLogprobs[r]) {
      results.push({ tokenId, logprobs: null });
      continue;
    }
    const top: SampledTopLogprob[] = [];
    for (let j = 0; j < words[b + 3]; j++) top.push({ tokenId: words[b + 4 + j], logprob: lp(floats[b + 24 + j]) });
    results.push({ tokenId, logprobs: { tokenId, logprob: lp(floats[b + 1]), rank: words[b + 2], top } });
  }
  return results;
}

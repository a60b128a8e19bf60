// Per-step values the attention-side kernels share across layers. A model binds each kernel once per layer at load
// time; each step it calls `update` once (one small uniform write) and re-records the dispatches, whose grid
// sizes are read from the step object at encode time.
import { KernelError } from '../core/errors.js';
import type { Gpu } from './gpu/device.js';

/** Number of new tokens this step (rope, kv_cache_write): grid y, and the row stride of the [3, T] positions. */
export class TokenStep {
  readonly uniform: GPUBuffer;
  private count = 0;

  constructor(
    private readonly gpu: Gpu,
    readonly maxTokens: number,
    readonly label = 'token_step',
  ) {
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= gpu.caps.maxComputeWorkgroupsPerDimension)) {
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${label}: maxTokens ${maxTokens} must be an integer in [1, ${gpu.caps.maxComputeWorkgroupsPerDimension}] (one grid row per token)`,
        { hint: 'split longer prefills into chunks' },
      );
    }
    this.uniform = gpu.device.createBuffer({ label: `${label}/uniform`, size: 16, usage: 0x40 | 0x08 });
  }

  get numTokens(): number {
    return this.count;
  }

  update(numTokens: number): void {
    if (!(Number.isInteger(numTokens) && numTokens >= 0 && numTokens <= this.maxTokens)) {
      throw new KernelError(
        'DAWN_ERR_KERNEL_SHAPE',
        `${this.label}: numTokens ${numTokens} must be an integer in [0, ${this.maxTokens}]`,
      );
    }
    this.count = numTokens;
    this.gpu.queue.writeBuffer(this.uniform, 0, new Uint32Array([numTokens, 0, 0, 0]));
  }
}

/** Largest decode partition: attention_decode keeps a partition's scores in workgroup memory (4 KiB). */
export const MAX_PARTITION_SIZE = 1024;

export interface AttentionStepLimits {
  /** Sequences per step (decode batch / prefill sequences). */
  maxSeqs: number;
  /** Query tokens per step, all sequences together (decode: maxSeqs). */
  maxTokens: number;
  /** Longest context (cached + new tokens) any sequence may reach: sizes the decode partition scratch. */
  maxContextLen: number;
  /** Tokens per decode split-K partition: a multiple of 16 up to MAX_PARTITION_SIZE (default 256). */
  partitionSize?: number;
}

/**
 * The batch of sequences attention sees this step: numSeqs (decode grid y; prefill tile search), numTokens
 * (prefill grid), and the decode split-K partition count ceil(longest context / partitionSize), which is the
 * decode grid z and decides whether the reduce dispatch runs at all (one partition: no reduce).
 */
export class AttentionStep {
  readonly uniform: GPUBuffer;
  readonly maxSeqs: number;
  readonly maxTokens: number;
  readonly maxContextLen: number;
  readonly partitionSize: number;
  readonly maxPartitions: number;
  private seqs = 0;
  private tokens = 0;
  private partitions = 1;

  constructor(
    private readonly gpu: Gpu,
    limits: AttentionStepLimits,
    readonly label = 'attention_step',
  ) {
    const { maxSeqs, maxTokens, maxContextLen } = limits;
    const partitionSize = limits.partitionSize ?? 256;
    const maxDim = gpu.caps.maxComputeWorkgroupsPerDimension;
    const bad = (what: string, v: number, range: string) =>
      new KernelError('DAWN_ERR_KERNEL_SHAPE', `${label}: ${what} ${v} must be an integer in ${range}`);
    if (!(Number.isInteger(maxSeqs) && maxSeqs >= 1 && maxSeqs <= maxDim))
      throw bad('maxSeqs', maxSeqs, `[1, ${maxDim}]`);
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw bad('maxTokens', maxTokens, '[1, ∞)');
    if (!(Number.isInteger(maxContextLen) && maxContextLen >= 1)) throw bad('maxContextLen', maxContextLen, '[1, ∞)');
    if (!(
      Number.isInteger(partitionSize) &&
      partitionSize >= 16 &&
      partitionSize % 16 === 0 &&
      partitionSize <= MAX_PARTITION_SIZE
    ))
      throw bad('partitionSize', partitionSize, `[16, ${MAX_PARTITION_SIZE}], a multiple of 16`);
    this.maxSeqs = maxSeqs;
    this.maxTokens = maxTokens;
    this.maxContextLen = maxContextLen;
    this.partitionSize = partitionSize;
    this.maxPartitions = Math.ceil(maxContextLen / partitionSize);
    if (this.maxPartitions > maxDim) throw bad('maxContextLen / partitionSize', this.maxPartitions, `[1, ${maxDim}]`);
    this.uniform = gpu.device.createBuffer({ label: `${label}/uniform`, size: 16, usage: 0x40 | 0x08 });
  }

  get numSeqs(): number {
    return this.seqs;
  }

  get numTokens(): number {
    return this.tokens;
  }

  get numPartitions(): number {
    return this.partitions;
  }

  /** Sets this step's batch; `maxContextLen` is the longest context_len among the sequences. */
  update(step: { numSeqs: number; numTokens: number; maxContextLen: number }): void {
    const { numSeqs, numTokens, maxContextLen } = step;
    const check = (what: string, v: number, max: number) => {
      if (!(Number.isInteger(v) && v >= 0 && v <= max))
        throw new KernelError('DAWN_ERR_KERNEL_SHAPE', `${this.label}: ${what} ${v} must be an integer in [0, ${max}]`);
    };
    check('numSeqs', numSeqs, this.maxSeqs);
    check('numTokens', numTokens, this.maxTokens);
    check('maxContextLen', maxContextLen, this.maxContextLen);
    this.seqs = numSeqs;
    this.tokens = numTokens;
    this.partitions = Math.max(1, Math.ceil(maxContextLen / this.partitionSize));
    this.gpu.queue.writeBuffer(
      this.uniform,
      0,
      new Uint32Array([numSeqs, numTokens, this.partitions, this.partitionSize]),
    );
  }
}

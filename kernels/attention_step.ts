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

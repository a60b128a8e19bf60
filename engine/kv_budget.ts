// How many KV blocks fit: vLLM's rule — gpu_memory_utilization × device memory, minus the weights and the peak
// activation scratch measured in a warm-up step, divided by one block's bytes over all layers — further capped so
// each layer's K (and V) pool fits one storage-buffer binding, which WebGPU limits separately from memory.
import { EngineError } from '../core/errors.js';

export interface KvLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Tokens per block. */
  blockSize: number;
  /** 2 for bf16/f16, 1 for fp8. */
  bytesPerElement: number;
  /** Extra bytes per block per layer (e.g. fp8 scales); default 0. */
  scaleBytesPerBlock?: number;
}

/** Bytes one layer's K pool (or V pool) spends on one block. */
export function kvBytesPerBlockPerLayer(layout: KvLayout): number {
  return (
    layout.numKvHeads * layout.headDim * layout.blockSize * layout.bytesPerElement + (layout.scaleBytesPerBlock ?? 0)
  );
}

/** Bytes one block costs over every layer, K and V. */
export function kvBytesPerBlock(layout: KvLayout): number {
  return 2 * layout.numLayers * kvBytesPerBlockPerLayer(layout);
}

export interface KvBudgetInput {
  layout: KvLayout;
  /** The device's memory (measured or reported by the adapter), bytes. */
  totalMemoryBytes: number;
  /** Fraction of it this process may use, in (0, 1]. */
  gpuMemoryUtilization: number;
  /** Weights as uploaded, bytes. */
  weightBytes: number;
  /** Peak activation scratch of the largest step (measured in a warm-up), bytes. */
  activationBytes: number;
  /** The device's maxStorageBufferBindingSize (one layer's K pool is one binding). */
  maxBindingBytes: number;
}

export interface KvBudget {
  numBlocks: number;
  /** Bytes the budget leaves for the KV cache. */
  budgetBytes: number;
  /** What bounded numBlocks. */
  limitedBy: 'memory' | 'binding';
}

export function kvBudget(input: KvBudgetInput): KvBudget {
  const { totalMemoryBytes, gpuMemoryUtilization: util, weightBytes, activationBytes } = input;
  if (!(util > 0 && util <= 1))
    throw new EngineError('DAWN_ERR_ENGINE_CONFIG', `gpu_memory_utilization must be in (0, 1], got ${util}`);
  const budgetBytes = Math.floor(totalMemoryBytes * util) - weightBytes - activationBytes;
  const perBlock = kvBytesPerBlock(input.layout);
  const byMemory = Math.floor(budgetBytes / perBlock);
  const byBinding = Math.floor(input.maxBindingBytes / kvBytesPerBlockPerLayer(input.layout));
  const numBlocks = Math.min(byMemory, byBinding);
  if (numBlocks < 1) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    throw new EngineError(
      'DAWN_ERR_ENGINE_NO_KV_MEMORY',
      `no memory left for the KV cache: ${util} × ${gib(totalMemoryBytes)} - weights ${gib(weightBytes)} - ` +
        `activations ${gib(activationBytes)} = ${gib(budgetBytes)}, and one block needs ${perBlock} bytes`,
      { hint: 'raise --gpu-memory-utilization, lower --max-num-batched-tokens, or use a smaller checkpoint' },
    );
  }
  return { numBlocks, budgetBytes, limitedBy: byBinding < byMemory ? 'binding' : 'memory' };
}

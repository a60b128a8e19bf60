import { describe, expect, it } from 'vitest';
import { kvBudget, kvBytesPerBlock, type KvLayout } from '../../engine/kv_budget.js';

// Qwen3-VL-30B-A3B's text model: 48 layers, 4 KV heads of 128, bf16.
const layout: KvLayout = { numLayers: 48, numKvHeads: 4, headDim: 128, blockSize: 16, bytesPerElement: 2 };
const GiB = 2 ** 30;

describe('KV budget', () => {
  it('counts K and V over every layer', () => {
    expect(kvBytesPerBlock(layout)).toBe(2 * 48 * 4 * 128 * 16 * 2);
    expect(kvBytesPerBlock({ ...layout, bytesPerElement: 1, scaleBytesPerBlock: 64 })).toBe(
      2 * 48 * (4 * 128 * 16 + 64),
    );
  });

  it('gives what is left after weights and activations, rounded down to whole blocks', () => {
    const b = kvBudget({
      layout,
      totalMemoryBytes: 80 * GiB,
      gpuMemoryUtilization: 0.9,
      weightBytes: 18 * GiB,
      activationBytes: 2 * GiB,
      maxBindingBytes: 4 * GiB,
    });
    const budget = Math.floor(80 * GiB * 0.9) - 20 * GiB;
    expect(b).toEqual({
      numBlocks: Math.floor(budget / kvBytesPerBlock(layout)),
      budgetBytes: budget,
      limitedBy: 'memory',
    });
    // 52 GiB of KV at 96 KiB per token: about 568k tokens.
    expect(b.numBlocks * 16).toBe(567_968);
  });

  it("caps the pool so one layer's K fits a storage binding", () => {
    const b = kvBudget({
      layout,
      totalMemoryBytes: 80 * GiB,
      gpuMemoryUtilization: 0.9,
      weightBytes: 0,
      activationBytes: 0,
      maxBindingBytes: 128 * 2 ** 20,
    });
    expect(b).toMatchObject({ numBlocks: (128 * 2 ** 20) / (4 * 128 * 16 * 2), limitedBy: 'binding' });
  });

  it('says why when nothing is left, and checks the utilization', () => {
    const input = {
      layout,
      totalMemoryBytes: 24 * GiB,
      gpuMemoryUtilization: 0.5,
      weightBytes: 18 * GiB,
      activationBytes: GiB,
      maxBindingBytes: GiB,
    };
    expect(() => kvBudget(input)).toThrow(/no memory left for the KV cache: 0.5 × 24.00 GiB - weights 18.00 GiB/);
    expect(() => kvBudget({ ...input, gpuMemoryUtilization: 1.5 })).toThrow(/gpu_memory_utilization must be in/);
  });
});

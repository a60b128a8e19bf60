// bench/models/decode.ts's bytes per decode step: at the Qwen3-VL-30B-A3B shape in NVFP4 with a 512-token BF16
// context a step reads ~2.23 GB (attention 0.51, 8 experts × 48 layers 1.02, router 0.03, lm_head 0.62, KV 0.05),
// so the H100's ~3.35 TB/s allows ~1,500 tok/s at batch 1 — the roofline issue 5 quotes.
import { describe, expect, it } from 'vitest';
import { decodeStepBytes } from '../../bench/models/decode.js';
import { parseQwen3VlMoeConfig } from '../../models/qwen3_vl_moe/config.js';
import { configJson } from '../../tools/synthetic/config_files.js';
import { presets } from '../../tools/synthetic/spec.js';

const text = parseQwen3VlMoeConfig(configJson(presets['30b'])).text;

describe('decodeStepBytes', () => {
  it('counts the weights a batch-1 step of the 30B touches and its KV read', () => {
    const b = decodeStepBytes(text, 'nvfp4', 'bf16', 1, 512);
    // qkv [5120, 2048] + o [2048, 4096] at 0.5625 B/weight (+4 B global scale each), 48 layers
    expect(b.attention).toBe(48 * (5120 * 2048 * 0.5625 + 4 + 2048 * 4096 * 0.5625 + 4));
    // top-8 experts: gate_up [1536, 2048] + down [2048, 768]
    expect(b.experts).toBe(48 * 8 * (1536 * 2048 * 0.5625 + 4 + 2048 * 768 * 0.5625 + 4));
    expect(b.router).toBe(48 * 128 * 2048 * 2);
    expect(b.lmHead).toBe(151936 * 2048 * 2);
    expect(b.kv).toBe(48 * 512 * 4 * 128 * 2 * 2);
    expect(b.total / 1e9).toBeCloseTo(2.228, 2);
    expect(3350e9 / b.total).toBeGreaterThan(1450);
    expect(3350e9 / b.total).toBeLessThan(1550);
  });

  it('counts distinct experts at larger batches and KV per sequence', () => {
    const b64 = decodeStepBytes(text, 'nvfp4', 'fp8e4m3', 64, 1024);
    expect(b64.expertsPerLayer).toBeCloseTo(128 * (1 - (1 - 8 / 128) ** 64), 6);
    expect(b64.expertsPerLayer).toBeGreaterThan(125);
    expect(b64.kv).toBe(48 * 64 * 1024 * 4 * 128 * 2 * 1);
    expect(decodeStepBytes(text, 'bf16', 'bf16', 1, 512).attention).toBe(48 * (5120 * 2048 + 2048 * 4096) * 2);
  });
});

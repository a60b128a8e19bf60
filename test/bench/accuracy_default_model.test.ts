import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../core/errors.js';
import { defaultModelDir } from '../../models/default_model.js';
import { repoRoot } from '../helpers/fixtures.js';

describe('defaultModelDir', () => {
  it('finds the committed NVFP4 checkpoint from the source tree', () => {
    const dir = defaultModelDir();
    expect(dir).toBe(join(repoRoot, 'assets', 'default-model'));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'hf_quant_config.json'])
      expect(existsSync(join(dir, f)), f).toBe(true);
  });

  it('finds it from a build directory two levels down (dist/models)', () => {
    expect(defaultModelDir(join(repoRoot, 'dist', 'models'))).toBe(join(repoRoot, 'assets', 'default-model'));
  });

  it('says where it looked when the assets are missing', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'dawn-default-'));
    try {
      mkdirSync(join(tmp, 'a', 'b'), { recursive: true });
      expect(() => defaultModelDir(join(tmp, 'a', 'b'))).toThrow(ModelError);
      expect(() => defaultModelDir(join(tmp, 'a', 'b'))).toThrow(/default-model/);
    } finally {
      rmSync(tmp, { recursive: true });
    }
  });
});

// Finds reference data: first the copy committed under test/fixtures, then ../shared/fixtures beside the checkout
// (present on the developers' machines, absent for users). Tests that need a missing variant skip with this reason.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const searchRoots = [join(repoRoot, 'test', 'fixtures'), join(repoRoot, '..', 'shared', 'fixtures')];

/** Absolute path of a fixture (e.g. 'qwen3vlmoe-tiny/nvfp4-ct'), or null when no copy exists. */
export function findFixture(relPath: string): string | null {
  for (const root of searchRoots) {
    const p = join(root, relPath);
    if (existsSync(p)) return p;
  }
  return null;
}

export function missingFixtureReason(relPath: string): string {
  return `fixture ${relPath} not found in test/fixtures or ../shared/fixtures`;
}

export { repoRoot };

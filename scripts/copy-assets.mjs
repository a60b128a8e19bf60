// Copies the non-TypeScript files the runtime reads (WGSL shaders, JSON data) into dist/, mirroring their paths,
// so `new URL('./x.wgsl', import.meta.url)` resolves the same from source (vitest, tsx) and from dist/.
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

const roots = ['core', 'kernels', 'loader', 'models', 'engine', 'server', 'bench'];
const exts = ['.wgsl'];
let copied = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (exts.some((e) => name.endsWith(e))) {
      mkdirSync(dirname(join('dist', path)), { recursive: true });
      copyFileSync(path, join('dist', path));
      copied++;
    }
  }
}
for (const r of roots) {
  try {
    statSync(r);
  } catch {
    continue;
  }
  walk(r);
}
console.log(`copy-assets: ${copied} file(s) into dist/`);

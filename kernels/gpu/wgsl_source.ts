// Reads a kernel's .wgsl file beside the module that uses it (works from source and from dist/, see scripts/copy-assets).
import { readFileSync } from 'node:fs';

const cache = new Map<string, string>();

export function loadWgsl(url: URL): string {
  const key = url.href;
  let text = cache.get(key);
  if (text === undefined) {
    text = readFileSync(url, 'utf8');
    cache.set(key, text);
  }
  return text;
}

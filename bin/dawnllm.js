#!/usr/bin/env node
// Runs the compiled CLI (npm run build); from a source checkout without a build, says how to make one.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('dawnllm: dist/ is missing; run `npm run build` (or `make build`) first\n');
  process.exit(1);
}
process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Mesa warns without it
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));

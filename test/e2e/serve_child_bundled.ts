// `dawnllm serve [flags]` from the source tree (tsx), with the real GPU runner: no MODEL serves the bundled model.
// Usage: node --import tsx test/e2e/serve_child_bundled.ts [serve flags]
import { runServe } from '../../cli/serve.js';

process.exit(await runServe(process.argv.slice(2)));

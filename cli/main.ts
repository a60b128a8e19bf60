// The `dawnllm` command: one entry that dispatches to each subcommand's module (loaded on demand, so `info`
// does not pay for the server's imports).
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DawnError } from '../core/errors.js';

const commands: Record<string, { help: string; run: () => Promise<(argv: string[]) => Promise<number>> }> = {
  info: {
    help: 'show the GPU adapter and its capabilities, and self-test a kernel',
    run: async () => (await import('./info.js')).runInfo,
  },
  serve: {
    help: 'serve a model over an OpenAI-compatible HTTP API (no MODEL: the bundled default model)',
    run: async () => (await import('./serve.js')).runServe,
  },
  bench: {
    help: 'benchmarks: serve (load test a server), engine (CPU per step), accuracy (BF16 vs NVFP4)',
    run: async () => (await import('./bench_command.js')).runBench,
  },
  inspect: {
    help: 'show how a checkpoint maps onto the model',
    run: async () => (await import('./inspect.js')).runInspect,
  },
};

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`);
  return `usage: dawnllm <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun dawnllm <command> --help for its options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`dawnllm: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (
      await command.run()
    )(rest);
  } catch (err) {
    if (err instanceof DawnError) {
      process.stderr.write(`dawnllm ${name}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

// Run from the sources (`npx tsx cli/main.ts serve`, the device kit); bin/dawnllm.js imports main from the build.
const invoked = process.argv[1];
if (invoked && import.meta.url === pathToFileURL(realpathSync(invoked)).href) {
  process.env.XDG_RUNTIME_DIR ??= '/tmp'; // Mesa warns without it
  process.exitCode = await main(process.argv.slice(2));
}

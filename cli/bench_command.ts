// `dawnllm bench <kind>`: the benchmarks a user runs against the engine, a server, or two checkpoints.
// (Kernel micro-benchmarks are developer tools: `make bench-kernels`.)
const kinds: Record<string, { help: string; run: () => Promise<(argv: string[]) => Promise<number>> }> = {
  serve: {
    help: 'load test a running OpenAI-compatible server (TTFT, TPOT, ITL, throughput), like `vllm bench serve`',
    run: async () => (await import('./bench.js')).runBenchServe,
  },
  engine: {
    help: "measure the engine's CPU time per step on the CPU stand-in runner",
    run: async () => (await import('./bench.js')).runBenchEngine,
  },
  accuracy: {
    help: 'compare checkpoints (e.g. BF16 vs NVFP4) on exact-match, multiple-choice, perplexity and drift',
    run: async () => (await import('./bench_accuracy.js')).runBenchAccuracy,
  },
};

export function benchUsage(): string {
  const rows = Object.entries(kinds).map(([name, k]) => `  ${name.padEnd(10)} ${k.help}`);
  return `usage: dawnllm bench <kind> [options]\n\nKinds:\n${rows.join('\n')}\n\nRun dawnllm bench <kind> --help for its options.\n`;
}

export async function runBench(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (!kind || kind === '--help' || kind === '-h') {
    process.stdout.write(benchUsage());
    return kind ? 0 : 2;
  }
  const k = kinds[kind];
  if (!k) {
    process.stderr.write(`dawnllm bench: unknown kind "${kind}" (expected one of ${Object.keys(kinds).join(', ')})\n`);
    return 2;
  }
  return (await k.run())(rest);
}

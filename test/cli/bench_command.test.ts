import { afterEach, describe, expect, it, vi } from 'vitest';
import { runBench } from '../../cli/bench_command.js';
import { main } from '../../cli/main.js';

describe('dawnllm bench', () => {
  afterEach(() => vi.restoreAllMocks());

  it('lists its kinds and rejects an unknown one, naming the choices', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await runBench(['--help'])).toBe(0);
    expect(String(out.mock.calls[0][0])).toMatch(/serve[\s\S]*engine[\s\S]*accuracy/);
    expect(await runBench(['latency'])).toBe(2);
    expect(String(err.mock.calls[0][0])).toMatch(/unknown kind "latency" \(expected one of serve, engine, accuracy\)/);
  });

  it('is reachable from the dawnllm command, as is serve', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(await main(['--help'])).toBe(0);
    const usage = String(out.mock.calls[0][0]);
    for (const cmd of ['info', 'inspect', 'serve', 'bench']) expect(usage).toMatch(new RegExp(`^  ${cmd} `, 'm'));
  });
});

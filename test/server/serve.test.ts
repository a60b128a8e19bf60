// The `serve` command: --help, its startup lines, the clear error while no GPU runner exists, and SIGTERM in a
// real child process (an in-flight request finishes, the process exits 0).
import { spawn } from 'node:child_process';
import { readUntil } from '../helpers/child_output.js';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { runServe } from '../../cli/serve.js';
import { DawnError } from '../../core/errors.js';
import { repoRoot } from '../helpers/fixtures.js';
import { moduleRunnerFactory, type RunnerLoadOptions } from '../../server/runner_factory.js';
import { modelDir } from './helpers.js';

describe('dawnllm serve', () => {
  it('--help lists every flag with its default', async () => {
    const lines: string[] = [];
    expect(await runServe(['--help'], { print: (l) => lines.push(l) })).toBe(0);
    const help = lines.join('\n');
    for (const flag of [
      '--host <string>',
      '--port <number>',
      '--served-model-name',
      '--max-model-len',
      '--max-num-seqs',
      '--max-num-batched-tokens',
      '--gpu-memory-utilization',
      '--dtype',
      '--quantization',
      '--kv-cache-dtype',
      '--enable-prefix-caching',
      '--api-key',
      '--chat-template',
      '--generation-config',
      '--device',
      '--allowed-local-media-path',
      '--allowed-media-domains',
      '--limit-mm-per-prompt',
      '--media-fetch-timeout',
      '--max-image-bytes',
      '--mm-processor-kwargs',
    ])
      expect(help).toContain(flag);
    expect(help).toContain('(default: 8000)');
    expect(help).toContain('(default: 0.9)');
  });

  it('a bad image-intake flag is a usage error before the port opens', async () => {
    const lines: string[] = [];
    const run = (...flags: string[]) =>
      runServe(['--host', '127.0.0.1', '--port', '0', ...flags, modelDir], { print: (l) => lines.push(l) });
    await expect(run('--limit-mm-per-prompt', 'image=2')).rejects.toMatchObject({
      code: 'DAWN_ERR_CLI_USAGE',
      message: expect.stringContaining(`--limit-mm-per-prompt: expected JSON like '{"image": 2}'`),
    });
    await expect(run('--allowed-local-media-path', join(modelDir, 'no-such-dir'))).rejects.toThrow(/does not exist/);
    await expect(run('--media-fetch-timeout', '-1')).rejects.toThrow(/positive number of seconds/);
    await expect(run('--mm-processor-kwargs', '{"foo": 1}')).rejects.toThrow(/unknown key "foo"/);
    await expect(run('--mm-processor-kwargs', '{"max_pixels": 0}')).rejects.toThrow(/positive integer/);
    await expect(run('--mm-processor-kwargs', 'max_pixels=5')).rejects.toThrow(/expected a JSON object/);
    expect(lines).toEqual([]);
  });

  it('the module runner factory names the missing runner module clearly', async () => {
    const factory = moduleRunnerFactory('../models/no_such_arch/runner.js', 'loadRunner');
    const options = { modelDir } as RunnerLoadOptions;
    await expect(factory(options)).rejects.toThrow(
      /GPU model runner \(models\/no_such_arch\/runner\.ts\) is not part of this build/,
    );
    await expect(factory(options)).rejects.toMatchObject({ code: 'DAWN_ERR_MODEL_RUNNER_MISSING' });
  });

  it('a failed load ends serve with the error after printing the detected format', async () => {
    const lines: string[] = [];
    const failing = async () => {
      throw new DawnError('DAWN_ERR_TEST_LOAD', 'load failed (test)');
    };
    const run = runServe(['--host', '127.0.0.1', '--port', '0', modelDir], {
      print: (l) => lines.push(l),
      runnerFactory: failing,
    });
    await expect(run).rejects.toThrow('load failed (test)');
    expect(lines[0]).toBe('detected format: unquantized (BF16/F16/F32)');
    expect(lines[1]).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it('prints format, load summary, KV size and a ready line; SIGTERM drains and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join('test', 'server', 'serve_child.ts'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--served-model-name',
        'tiny',
        modelDir,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const out = await readUntil(child, /ready: .*/);
      expect(out).toContain('detected format: unquantized (BF16/F16/F32)');
      expect(out).toContain('loaded: fake CPU runner (test)');
      expect(out).toContain('GPU KV cache size: 1024 tokens');
      const address = /listening on (http:\/\/[\d.:]+)/.exec(out)![1];
      const client = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'x', maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 30,
        stream: true,
        stream_options: { include_usage: true },
        ...{ ignore_eos: true },
      });
      const it = stream[Symbol.asyncIterator]();
      await it.next(); // in flight now
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      let finish = null;
      let usage = null;
      for (let r = await it.next(); !r.done; r = await it.next()) {
        finish = r.value.choices[0]?.finish_reason ?? finish;
        usage = r.value.usage ?? usage;
      }
      expect(finish).toBe('length');
      expect(usage?.completion_tokens).toBe(30);
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

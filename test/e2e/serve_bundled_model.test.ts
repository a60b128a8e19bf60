// The whole product on lavapipe: `dawnllm serve` with no MODEL loads the bundled NVFP4 arithmetic model on the GPU
// runner, and the official `openai` client gets transformers' answers back over HTTP (plain, streamed, with
// logprobs, several at once).
import { type ChildProcess, spawn } from 'node:child_process';
import { readUntil } from '../helpers/child_output.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuOrSkip } from '../helpers/gpu.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const gpu = await gpuOrSkip();
const model = 'qwen3vlmoe-arith-nvfp4';

describe.skipIf(gpu === null)('dawnllm serve, bundled model, real GPU runner', () => {
  let child: ChildProcess;
  let client: OpenAI;

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      ['--import', 'tsx', join('test', 'e2e', 'serve_child_bundled.ts'), '--host', '127.0.0.1', '--port', '0'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } },
    );
    const out = await readUntil(child, /ready: .*/, 90_000);
    expect(out).toContain('ModelOpt NVFP4');
    const address = /listening on (http:\/\/[\d.:]+)/.exec(out)![1];
    client = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'x', maxRetries: 0 });
  }, 120_000);

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  const ask = (q: string) => ({ model, messages: [{ role: 'user' as const, content: q }], temperature: 0 });

  it('answers "What is 7 times 8?" with "56"', async () => {
    const r = await client.chat.completions.create({ ...ask('What is 7 times 8?'), max_tokens: 16 });
    expect(r.choices[0].message.content).toBe('56');
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage?.completion_tokens).toBe(3); // "5", "6", <|im_end|>
  }, 60_000);

  it('streams the same answer token by token, with logprobs', async () => {
    const stream = await client.chat.completions.create({
      ...ask('What is 48 plus 27?'),
      max_tokens: 16,
      stream: true,
      logprobs: true,
      top_logprobs: 2,
    });
    let text = '';
    const logprobs: number[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      for (const l of chunk.choices[0]?.logprobs?.content ?? []) {
        expect(l.top_logprobs).toHaveLength(2);
        expect(l.top_logprobs[0].logprob).toBeGreaterThanOrEqual(l.top_logprobs[1].logprob);
        logprobs.push(l.logprob);
      }
    }
    expect(text).toBe('75');
    expect(logprobs.length).toBeGreaterThanOrEqual(2);
    for (const l of logprobs) expect(l).toBeLessThanOrEqual(0);
  }, 60_000);

  it('answers concurrent requests each correctly (continuous batching)', async () => {
    const cases: [string, string][] = [
      // Held-out items of assets/tasks/arith-gen.jsonl, one per task (transformers answers each exactly).
      ['What is 17 plus 88?', '105'],
      ['What is 58 minus 36?', '22'],
      ['What is 9 times 12?', '108'],
      ['What is 470 plus 241?', '711'],
    ];
    const answers = await Promise.all(
      cases.map(([q]) => client.chat.completions.create({ ...ask(q), max_tokens: 16 })),
    );
    expect(answers.map((a) => a.choices[0].message.content)).toEqual(cases.map(([, a]) => a));
  }, 60_000);
});

// scripts/image-install.sh is what the Dockerfile runs to install the image's system packages. There is no Docker
// engine here, so this runs the same script on this Debian machine (as root, idempotent) and checks the result:
// the Vulkan loader is present and, for the CPU variant, Dawn finds the lavapipe adapter.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const script = new URL('../../scripts/image-install.sh', import.meta.url).pathname;
const probe = new URL('../../scripts/probe-adapter.mjs', import.meta.url).pathname;
const debian = existsSync('/etc/os-release') && /^ID=debian$/m.test(readFileSync('/etc/os-release', 'utf8'));
const root = process.getuid?.() === 0;
const reason = !debian ? 'not a Debian machine' : !root ? 'not root (the script installs Debian packages)' : null;
if (reason) console.log(`image-install test skipped: ${reason}`);

const run = (cmd: string, args: string[]) =>
  spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, timeout: 300_000 });

describe('scripts/image-install.sh', () => {
  it('rejects a missing or unknown variant, saying what it expected', () => {
    const r = run('bash', [script, 'tpu']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected one argument, gpu or cpu; found 'tpu'/);
  });

  it.skipIf(reason !== null)(
    'installs the CPU variant for real and Dawn then finds lavapipe',
    () => {
      const r = run('bash', [script, 'cpu']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/image-install: Vulkan loader \S+/);
      expect(r.stdout).toMatch(/lavapipe: Mesa (2[4-9]|[3-9]\d)\./);
      const p = run(process.execPath, [probe]);
      expect(p.stdout, p.stderr).toMatch(/^software .*llvmpipe/);
    },
    320_000,
  );
});

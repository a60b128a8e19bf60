// The Dockerfile, parsed (dockerfile-ast) and checked for what docs/DEPLOY.md promises: a build stage with dev
// dependencies and a runtime stage with production ones only, the install steps in scripts/image-install.sh, a
// non-root user, the port, a HEALTHCHECK on /health, `dawnllm serve` as entry point, and nothing fetched at run time.
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';

const text = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const froms = dockerfile.getFROMs();
const instructions = dockerfile.getInstructions();
const runtimeStart = froms[froms.length - 1].getRange().start.line;
const runtime = instructions.filter((i) => i.getRange().start.line >= runtimeStart);
const args = (i: Instruction) => i.getArgumentsContent() ?? '';
// The instruction as written (flags such as --from are not among its arguments).
const source = (i: Instruction) => text.split('\n')[i.getRange().start.line].trim();
const ofKind = (list: Instruction[], kw: string) => list.filter((i) => i.getKeyword() === kw);

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage on Debian bookworm Node 20', () => {
    expect(froms.map((f) => f.getBuildStage())).toEqual(['build', 'runtime']);
    const image = ofKind(instructions, 'ARG').find((a) => args(a).startsWith('NODE_IMAGE='));
    expect(args(image!)).toBe('NODE_IMAGE=node:20-bookworm-slim');
  });

  it('installs dev dependencies only to build, production ones in the runtime stage', () => {
    const build = instructions.filter((i) => i.getRange().start.line < runtimeStart);
    expect(ofKind(build, 'RUN').map(args).join('\n')).toMatch(/npm ci --no-audit[\s\S]*npm run build/);
    const runtimeRuns = ofKind(runtime, 'RUN').map(args);
    expect(runtimeRuns.some((r) => r.includes('npm ci --omit=dev'))).toBe(true);
    expect(runtimeRuns.some((r) => /npm (ci|install)(?![^&]*--omit=dev)/.test(r))).toBe(false);
    expect(ofKind(runtime, 'COPY').map(source)).toContain('COPY --from=build /app/dist ./dist');
  });

  it('runs the system install script (GPU or CPU variant) that CI also runs', () => {
    expect(ofKind(runtime, 'ARG').map(args)).toContain('VARIANT=gpu');
    expect(ofKind(runtime, 'RUN').map(args).join('\n')).toMatch(/scripts\/image-install\.sh "\$\{VARIANT\}"/);
    const env = ofKind(runtime, 'ENV').map(args).join(' ');
    expect(env).toMatch(/NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics/);
  });

  it('runs as a non-root user, exposes 8000, checks /health', () => {
    const users = ofKind(runtime, 'USER').map(args);
    expect(users.length).toBe(1);
    expect(users[0]).not.toMatch(/^(root|0)$/);
    expect(ofKind(runtime, 'EXPOSE').map(args)).toEqual(['8000']);
    const health = ofKind(runtime, 'HEALTHCHECK');
    expect(health.length).toBe(1);
    expect(args(health[0])).toMatch(/127\.0\.0\.1:8000\/health/);
  });

  it('starts `dawnllm serve /models/default` and fetches nothing at run time', () => {
    expect(args(ofKind(runtime, 'ENTRYPOINT')[0])).toBe('["dawnllm"]');
    const cmd = JSON.parse(args(ofKind(runtime, 'CMD')[0])) as string[];
    expect(cmd.slice(0, 2)).toEqual(['serve', '/models/default']);
    // What runs when the container starts: entry point, command, health check.
    const atRunTime = [...ofKind(runtime, 'ENTRYPOINT'), ...ofKind(runtime, 'CMD'), ...ofKind(runtime, 'HEALTHCHECK')];
    for (const i of atRunTime)
      expect(args(i)).not.toMatch(/\b(npm|npx|curl|wget|apt-get|pip)\b|https?:\/\/(?!127\.0\.0\.1)/);
  });

  it('keeps build outputs and local state out of the build context', () => {
    const ignore = readFileSync(new URL('../../.dockerignore', import.meta.url), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', '.device', '.git']) expect(ignore).toContain(p);
  });
});

// Waiting on a child process's stdout (servers started by tests print a ready line).
import type { ChildProcess } from 'node:child_process';

/** The child's stdout until `pattern` appears; rejects with both streams if it exits first or after `timeoutMs`. */
export function readUntil(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} after ${timeoutMs / 1000} s; stdout:\n${out}\nstderr:\n${err}`)),
      timeoutMs,
    );
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`child exited with ${code} before ${pattern}; stdout:\n${out}\nstderr:\n${err}`)),
    );
  });
}

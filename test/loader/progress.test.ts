// The upload's progress display: bytes, rate and ETA text; a redrawn bar on a TTY (throttled, ending with a
// newline); nothing on the stream otherwise (the log sink writes through core/log.ts instead).
import { describe, expect, it } from 'vitest';
import { describeProgress, progressBar, progressSink } from '../../loader/progress.js';

const MiB = 1024 * 1024;

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  const stream = { isTTY, columns: 200, write: (s: string) => writes.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe('progress', () => {
  it('describes bytes, rate and ETA', () => {
    const text = describeProgress({ doneBytes: 100 * MiB, totalBytes: 400 * MiB, elapsedMs: 2000, current: 'x' });
    expect(text).toBe('100.0 MiB / 400.0 MiB  50.0 MiB/s  ETA 6.0 s');
    expect(describeProgress({ doneBytes: 0, totalBytes: 10, elapsedMs: 0, current: '' })).toContain('ETA ?');
  });

  it('draws a bar', () => {
    expect(progressBar(0.5, 10)).toBe('[#####.....]');
    expect(progressBar(2, 4)).toBe('[####]');
  });

  it('redraws on a TTY at most every 100 ms and ends the line', () => {
    const { stream, writes } = fakeStream(true);
    const sink = progressSink('auto', 'loading weights', stream);
    const at = (doneBytes: number, elapsedMs: number) => ({ doneBytes, totalBytes: 4 * MiB, elapsedMs, current: 'p' });
    sink.update(at(1 * MiB, 150));
    sink.update(at(2 * MiB, 200)); // too soon: skipped
    sink.update(at(3 * MiB, 300));
    sink.done(at(4 * MiB, 400));
    expect(writes.length).toBe(4);
    expect(writes[0]).toMatch(/^\rloading weights \[#+\.+\] {2}25% 1\.00 MiB \/ 4\.00 MiB/);
    expect(writes[2]).toContain('100%');
    expect(writes[3]).toBe('\n');
  });

  it('writes nothing to a pipe', () => {
    const { stream, writes } = fakeStream(false);
    const sink = progressSink('auto', 'loading weights', stream);
    sink.update({ doneBytes: 1, totalBytes: 2, elapsedMs: 10, current: 'p' });
    sink.done({ doneBytes: 2, totalBytes: 2, elapsedMs: 20, current: 'p' });
    expect(writes).toEqual([]);
  });
});

// Progress of a long byte transfer (the weight upload): a redrawn bar with bytes, rate and ETA on a terminal, a
// plain log line every few seconds otherwise (CI logs and pipes must not fill with carriage returns).
import { formatBytes, formatDuration } from '../core/format.js';
import { logger } from '../core/log.js';

const log = logger('loader');

export interface ProgressState {
  doneBytes: number;
  totalBytes: number;
  elapsedMs: number;
  /** What is being transferred now (a parameter name). */
  current: string;
}

export type ProgressMode = 'auto' | 'bar' | 'log' | 'none';

export interface ProgressSink {
  update(state: ProgressState): void;
  done(state: ProgressState): void;
}

/** "1.20 GiB / 3.40 GiB  850.0 MiB/s  ETA 2.6 s" */
export function describeProgress(s: ProgressState): string {
  const rate = s.elapsedMs > 0 ? (s.doneBytes / s.elapsedMs) * 1000 : 0;
  const left = s.totalBytes - s.doneBytes;
  const eta = rate > 0 ? formatDuration((left / rate) * 1000) : '?';
  return `${formatBytes(s.doneBytes)} / ${formatBytes(s.totalBytes)}  ${formatBytes(rate)}/s  ETA ${eta}`;
}

export function progressBar(fraction: number, width = 30): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** A sink for `mode`: 'auto' draws a bar when `stream` is a TTY and logs lines otherwise. */
export function progressSink(
  mode: ProgressMode,
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressSink {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'log') : mode;
  if (resolved === 'none') return { update() {}, done() {} };
  if (resolved === 'bar') return barSink(label, stream);
  return logSink(label);
}

function percent(s: ProgressState): string {
  return `${s.totalBytes > 0 ? ((100 * s.doneBytes) / s.totalBytes).toFixed(0) : '100'}%`;
}

function barSink(label: string, stream: NodeJS.WriteStream): ProgressSink {
  let lastDraw = 0;
  const draw = (s: ProgressState) => {
    const frac = s.totalBytes > 0 ? s.doneBytes / s.totalBytes : 1;
    const line = `${label} ${progressBar(frac)} ${percent(s).padStart(4)} ${describeProgress(s)}`;
    const width = stream.columns ?? 120;
    stream.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length))}\x1b[K`);
  };
  return {
    update(s) {
      if (s.elapsedMs - lastDraw < 100) return; // ~10 redraws a second are enough
      lastDraw = s.elapsedMs;
      draw(s);
    },
    done(s) {
      draw(s);
      stream.write('\n');
    },
  };
}

function logSink(label: string): ProgressSink {
  let lastLog = 0;
  return {
    update(s) {
      if (s.elapsedMs - lastLog < 5000) return;
      lastLog = s.elapsedMs;
      log.info(`${label}: ${percent(s)} ${describeProgress(s)} (${s.current})`);
    },
    done() {},
  };
}

// A one-line progress bar on stderr when it is a terminal (redrawn at most every 100 ms); otherwise one line
// when a phase starts and one when it ends, so CI logs stay short.
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly start = performance.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream | null = process.stderr,
  ) {
    if (out && !out.isTTY) out.write(`${label}: ${total} items\n`);
  }

  tick(): void {
    this.done++;
    if (!this.out?.isTTY) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    this.out.write(`\r${renderBar(this.label, this.done, this.total, (now - this.start) / 1000)}`);
  }

  finish(): void {
    const s = (performance.now() - this.start) / 1000;
    if (this.out?.isTTY) this.out.write(`\r${renderBar(this.label, this.done, this.total, s)}\n`);
    else this.out?.write(`${this.label}: done in ${s.toFixed(1)} s\n`);
  }
}

export function renderBar(label: string, done: number, total: number, seconds: number, width = 30): string {
  const frac = total === 0 ? 1 : done / total;
  const filled = Math.round(frac * width);
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? (total - done) / rate : 0;
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  return `${label} ${bar} ${done}/${total} ${rate.toFixed(1)} it/s, ${seconds.toFixed(0)} s elapsed, ${eta.toFixed(0)} s left`;
}

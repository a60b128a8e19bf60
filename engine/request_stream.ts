// The AsyncIterable a caller of addRequest consumes. The engine pushes events without waiting; the consumer pulls
// at its own pace (events queue up meanwhile). A consumer that stops early (break, return, a thrown error in its
// for-await loop) triggers onCancel, which the engine turns into an abort that frees the request's KV blocks.
import type { RequestOutputEvent } from './request.js';

type Pull = { resolve: (r: IteratorResult<RequestOutputEvent>) => void; reject: (e: unknown) => void };

export class RequestStream implements AsyncIterable<RequestOutputEvent> {
  private readonly queue: RequestOutputEvent[] = [];
  private pending: Pull | null = null;
  private end: { kind: 'done' } | { kind: 'error'; error: unknown } | null = null;
  private isIterating = false;

  constructor(
    readonly requestId: string,
    private readonly onCancel: () => void,
  ) {}

  /** Whether the engine has ended the stream (the consumer may still be reading queued events). */
  get isClosed(): boolean {
    return this.end !== null;
  }

  push(event: RequestOutputEvent): void {
    if (this.end !== null) return;
    if (this.pending !== null) {
      this.pending.resolve({ value: event, done: false });
      this.pending = null;
    } else this.queue.push(event);
  }

  close(): void {
    this.finish({ kind: 'done' });
  }

  fail(error: unknown): void {
    this.finish({ kind: 'error', error });
  }

  [Symbol.asyncIterator](): AsyncIterator<RequestOutputEvent> {
    if (this.isIterating) throw new Error(`request ${this.requestId}: its output stream can be iterated only once`);
    this.isIterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        if (this.end === null) {
          this.end = { kind: 'done' };
          this.queue.length = 0;
          this.onCancel();
        }
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<RequestOutputEvent>> {
    const event = this.queue.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.end?.kind === 'error') return Promise.reject(this.end.error);
    if (this.end?.kind === 'done') return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }

  private finish(end: { kind: 'done' } | { kind: 'error'; error: unknown }): void {
    if (this.end !== null) return;
    this.end = end;
    if (this.pending === null) return;
    const pull = this.pending;
    this.pending = null;
    if (end.kind === 'error') pull.reject(end.error);
    else pull.resolve({ value: undefined, done: true });
  }
}

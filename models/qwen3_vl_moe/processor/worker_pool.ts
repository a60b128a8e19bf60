// Image decoding and preprocessing in worker threads: processImage is synchronous (a 1920x1080 image takes
// ~100–400 ms), and on the server's event loop it would stall every stream's SSE for that long. The pool holds
// min(4, os.availableParallelism()) workers, started on demand; tasks queue FIFO, one per worker at a time. The
// pixel values come back transferred (no copy). Errors come back as the same class with the same code, message
// and param (an ImageInputError stays a 400); a worker that dies fails only its task and is replaced.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ApiError } from '../../../core/errors.js';
import { ImageInputError } from './errors.js';
import type { ImageProcessorConfig, ProcessedImage } from './types.js';

export interface WorkerTask {
  id: number;
  bytes: Uint8Array<ArrayBuffer>;
  cfg: ImageProcessorConfig;
  where: string;
}

/** What crosses back from a worker: the image, or the error as plain fields (classes do not survive cloning). */
export type WorkerReply =
  { id: number; ok: true; image: ProcessedImage } | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  /** ApiError's fields; absent for other errors. */
  api?: { status: number; type: string; param: string | null };
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerializedError = { name: err.name, message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (err instanceof ApiError) out.api = { status: err.status, type: err.type, param: err.param };
  return out;
}

/** The worker's error as the main thread throws it: ImageInputError and ApiError are rebuilt as such. */
export function reviveError(e: SerializedError): Error {
  if (e.api !== undefined && e.code !== undefined) {
    if (e.name === 'ImageInputError' && e.api.status === 400)
      return new ImageInputError(e.code, e.message, e.api.param);
    return new ApiError(e.api.status, e.code, e.message, { type: e.api.type, param: e.api.param });
  }
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.stack !== undefined) err.stack = `${e.stack}\n    (in the image worker thread)`;
  return err;
}

/** Pool size: one worker per core the process may use, at least 1, at most 4 (images are a small part of a request). */
export function defaultImageWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

interface Pending {
  task: WorkerTask;
  resolve(image: ProcessedImage): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
  /** The uncaught error that ended the worker, for the crash message. */
  error: Error | null;
}

export interface ImageWorkerPoolOptions {
  /** Worker count; default defaultImageWorkers(). */
  size?: number;
  /** The worker module; default image_worker.ts/.js beside this file (tests pass others). */
  workerUrl?: URL;
}

/**
 * From the sources (vitest, tsx) the worker is a .ts file. `--import tsx` in a worker's execArgv does not reach the
 * worker's own entry on Node 20, so a small eval'd bootstrap registers tsx's ESM hooks in the thread first.
 */
function startWorker(url: URL): Worker {
  const options = { name: 'dawnllm-image' };
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

export class ImageWorkerPool {
  readonly size: number;
  private readonly workerUrl: URL;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  /** Workers that died with a task and were replaced (for tests and logs). */
  crashes = 0;

  constructor(options: ImageWorkerPoolOptions = {}) {
    this.size = options.size ?? defaultImageWorkers();
    if (!(Number.isInteger(this.size) && this.size >= 1))
      throw new RangeError(`image worker pool: size must be an integer >= 1, got ${this.size}`);
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.workerUrl = options.workerUrl ?? new URL(`./image_worker.${ext}`, import.meta.url);
  }

  /** Decodes and preprocesses `bytes` in a worker; `where` names the image in errors (the request's JSON path). */
  preprocess(bytes: Uint8Array, cfg: ImageProcessorConfig, where: string): Promise<ProcessedImage> {
    if (this.closed) return Promise.reject(new Error('image worker pool: closed'));
    // Our own copy, transferred: the caller's view may share a larger buffer (Buffer's pool), and a Buffer's
    // slice() would be a view, not a copy.
    const task: WorkerTask = { id: this.nextId++, bytes: new Uint8Array(bytes), cfg, where };
    return new Promise<ProcessedImage>((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates the workers; queued and running tasks are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('image worker pool: closed while the image was being processed');
    for (const p of this.queue.splice(0)) p.reject(err);
    const slots = this.slots.splice(0);
    for (const s of slots) s.busy?.reject(err);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.busy === null);
      if (slot === undefined) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const pending = this.queue.shift()!;
      slot.busy = pending;
      slot.worker.ref(); // a task in flight keeps the process alive; an idle pool does not
      slot.worker.postMessage(pending.task, [pending.task.bytes.buffer]);
    }
  }

  private spawn(): Slot {
    const worker = startWorker(this.workerUrl);
    const slot: Slot = { worker, busy: null, error: null };
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const pending = slot.busy;
      if (pending === null || pending.task.id !== reply.id) return;
      slot.busy = null;
      worker.unref();
      if (reply.ok) pending.resolve(reply.image);
      else pending.reject(reviveError(reply.error));
      this.dispatch();
    });
    worker.on('error', (err) => (slot.error = err));
    worker.on('exit', (code) => this.onExit(slot, code));
    this.slots.push(slot);
    return slot;
  }

  /** A worker ended on its own (crash, out of memory, failed to load): fail its task only, replace it on demand. */
  private onExit(slot: Slot, code: number): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return; // close() took it out
    this.slots.splice(i, 1);
    const pending = slot.busy;
    slot.busy = null;
    if (pending !== null) {
      this.crashes++;
      const why = slot.error !== null ? `${slot.error.name}: ${slot.error.message}` : `exit code ${code}`;
      pending.reject(
        new ApiError(
          500,
          'DAWN_ERR_IMAGE_WORKER',
          `${pending.task.where}: the image preprocessing worker died while processing this image (${why})`,
          { param: pending.task.where },
        ),
      );
    }
    this.dispatch();
  }
}

let shared: ImageWorkerPool | null = null;

/** decodeImage + processImage on the shared pool, started with the first image. */
export function preprocessInWorker(
  bytes: Uint8Array,
  cfg: ImageProcessorConfig,
  where: string,
): Promise<ProcessedImage> {
  shared ??= new ImageWorkerPool();
  return shared.preprocess(bytes, cfg, where);
}

/** Server shutdown: ends the shared pool's workers (a later image starts a new pool). */
export async function closeImageWorkers(): Promise<void> {
  const pool = shared;
  shared = null;
  await pool?.close();
}

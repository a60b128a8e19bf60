// The error classes every layer throws. Each carries a stable `code` (Fastify style: DAWN_ERR_<AREA>_<WHAT>) and
// a message that says what was expected, what was found, and where, with an optional hint.

export interface DawnErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class DawnError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: DawnErrorOptions = {}) {
    super(options.hint ? `${message}\n---> HINT: ${options.hint}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
}

/** A GPU-side failure: no adapter, validation error, out of memory, device lost, shader compile error. */
export class GpuError extends DawnError {}

/** A kernel was called with shapes or dtypes it does not support. */
export class KernelError extends DawnError {}

/** A checkpoint could not be read, recognised or mapped onto the model's parameters. */
export class LoaderError extends DawnError {}

/** A model config or graph problem (unsupported field, wrong input). */
export class ModelError extends DawnError {}

/** A scheduling / request-lifecycle failure inside the engine. */
export class EngineError extends DawnError {}

/** An error that becomes an HTTP response in OpenAI's shape. */
export class ApiError extends DawnError {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;

  constructor(status: number, code: string, message: string, opts: { type?: string; param?: string | null } = {}) {
    super(code, message);
    this.status = status;
    this.type = opts.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = opts.param ?? null;
  }
}

/** Shortens a list for an error message: the first `max` items and a count of the rest. */
export function listSome(items: readonly string[], max = 8): string {
  const shown = items.slice(0, max).map((s) => `"${s}"`);
  const rest = items.length - shown.length;
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}

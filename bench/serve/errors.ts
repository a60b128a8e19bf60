// The one error class of `dawnllm bench serve`: a run that cannot start or go on (server unreachable, test request
// refused, an unreadable --image), with a hint where there is a likely fix.
import { DawnError } from '../../core/errors.js';

export class BenchError extends DawnError {}

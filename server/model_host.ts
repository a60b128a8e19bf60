// The server's view of its model over time: loading (the port is open, /health says 503), ready, draining (SIGTERM:
// no new requests) or dead (loading failed, or the engine failed a step). Routes ask for the model through
// require(), which turns every state but ready into a 503 in OpenAI's shape.
import { logger } from '../core/log.js';
import { unavailable } from './errors.js';
import type { ServingModel } from './serving_model.js';

const log = logger('server');

export type HostState =
  | { kind: 'loading' }
  | { kind: 'ready'; model: ServingModel }
  | { kind: 'draining'; model: ServingModel }
  | { kind: 'dead'; reason: string };

export class ModelHost {
  /** Names clients may send as `model`; the first is the one reported. */
  readonly servedModelNames: readonly string[];
  /** The checkpoint directory (/v1/models root). */
  readonly root: string;
  readonly createdS = Math.floor(Date.now() / 1000);
  private current: HostState = { kind: 'loading' };

  constructor(servedModelNames: readonly string[], root: string) {
    this.servedModelNames = servedModelNames;
    this.root = root;
  }

  get state(): HostState {
    return this.current;
  }

  get modelName(): string {
    return this.servedModelNames[0];
  }

  /** The model when it is loaded, else null (draining included: in-flight requests still read it). */
  get model(): ServingModel | null {
    const s = this.current;
    return s.kind === 'ready' || s.kind === 'draining' ? s.model : null;
  }

  setReady(model: ServingModel): void {
    if (this.current.kind === 'loading') this.current = { kind: 'ready', model };
  }

  /** The engine or the load failed: every request gets 503 from now on and /health says so. */
  setDead(reason: string): void {
    if (this.current.kind === 'dead') return;
    log.error(`engine is dead: ${reason}`);
    this.current = { kind: 'dead', reason };
  }

  /** The model, for a request about to use it; a 503 unless ready. */
  require(): ServingModel {
    const s = this.current;
    switch (s.kind) {
      case 'ready':
        return s.model;
      case 'loading':
        throw unavailable('DAWN_ERR_API_LOADING', 'the model is still loading; retry when GET /health returns 200');
      case 'draining':
        throw unavailable('DAWN_ERR_API_SHUTTING_DOWN', 'the server is shutting down, no new requests are accepted');
      case 'dead':
        throw unavailable('DAWN_ERR_API_ENGINE_DEAD', `the engine has stopped: ${s.reason}`);
    }
  }

  /** SIGTERM: refuse new requests, let in-flight ones finish for up to graceMs, abort the rest, free the runner. */
  async drain(graceMs: number): Promise<void> {
    const s = this.current;
    if (s.kind !== 'ready') return;
    this.current = { kind: 'draining', model: s.model };
    const n = s.model.engine.numUnfinishedRequests;
    log.info(`draining: ${n} request(s) in flight, grace period ${(graceMs / 1000).toFixed(1)} s`);
    await s.model.engine.shutdown(graceMs);
  }
}

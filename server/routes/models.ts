// GET /v1/models: the served model (and its aliases from --served-model-name), with vLLM's root and max_model_len.
import type { ServerContext } from '../generation.js';
import type { App } from './common.js';

export function registerModels(app: App, ctx: ServerContext): void {
  app.get('/v1/models', async () => {
    const { host } = ctx;
    const model = host.require();
    return {
      object: 'list',
      data: host.servedModelNames.map((id) => ({
        id,
        object: 'model',
        created: host.createdS,
        owned_by: 'dawnllm',
        root: host.root,
        parent: null,
        max_model_len: model.maxModelLen,
        permission: [],
      })),
    };
  });
}

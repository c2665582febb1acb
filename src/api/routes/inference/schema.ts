import type { Context } from 'hono';
import { getActiveModel, getModel, type Model } from '../../../db/queries/models.ts';
import { ApiError } from '../../errors.ts';
import type { ApiEnv } from '../../types.ts';

/**
 * The model a direct inference request names (or the active one), refused with 422 when it is not
 * registered or lacks the graph the operation needs.
 */
export async function modelFor(c: Context<ApiEnv>, id: string | undefined, needs?: { graph: 'decoder' | 'itm'; role: string }): Promise<Model> {
  const db = c.var.ctx.db;
  const model = id ? await getModel(db, id) : await getActiveModel(db);
  if (!model) throw new ApiError('unknown_model', id ? `model: no model ${id} is registered.` : 'model: none given and no model is active.', { extensions: { field: 'model' } });
  if (needs) requireGraph(model, needs);
  return model;
}

/** Refuses (422) a model that lacks the graph an operation needs. */
export function requireGraph(model: Model, needs: { graph: 'decoder' | 'itm'; role: string }): void {
  const graphs = (model.manifest as { graphs?: Record<string, unknown> }).graphs ?? {};
  if (!graphs[needs.graph]) {
    throw new ApiError('model_unsuitable', `model: ${model.id} has no ${needs.graph} graph, so it cannot ${needs.role}.`, { extensions: { field: 'model' } });
  }
}

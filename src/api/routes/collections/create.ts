import { createRoute } from '@hono/zod-openapi';
import { createCollection } from '../../../db/queries/collections.ts';
import { getActiveModel, getModel, type Model } from '../../../db/queries/models.ts';
import type { Db } from '../../../db/client.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Collection, CreateCollection, toCollection } from './schema.ts';

export const route = createRoute({
  operationId: 'createCollection',
  tags: ['collections'],
  summary: 'Create a collection',
  description: 'Needs the admin scope and a key not limited to collections. The embedder defaults to the active model.',
  method: 'post',
  path: '/v1/collections',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { body: jsonBody(CreateCollection) },
  responses: {
    201: jsonContent(Collection, 'The new collection'),
    ...errorResponses(400, 403, 409, 413, 415, 422),
  },
});
export type CreateCollectionResponse = Collection;

const graphsOf = (m: Model) => (m.manifest as { graphs?: Record<string, unknown> }).graphs ?? {};

async function model(db: Db, field: string, id: string, needs?: { graph: string; role: string }): Promise<Model> {
  const m = await getModel(db, id);
  if (!m) throw new ApiError('unknown_model', `${field}: no model ${id} is registered.`, { extensions: { field } });
  if (needs && !graphsOf(m)[needs.graph]) {
    throw new ApiError('model_unsuitable', `${field}: ${id} has no ${needs.graph} graph, so it cannot ${needs.role}.`, { extensions: { field } });
  }
  return m;
}

export function registerCreateCollection(app: App) {
  app.openapi(route, async (c) => {
    const { db } = c.var.ctx;
    const body = c.req.valid('json');
    let embedder = body.embedder;
    if (!embedder) {
      const active = await getActiveModel(db);
      if (!active) throw new ApiError('unknown_model', 'embedder: none given and no model is active.', { extensions: { field: 'embedder' } });
      embedder = active.id;
    }
    await model(db, 'embedder', embedder);
    if (body.reranker) await model(db, 'reranker', body.reranker, { graph: 'itm', role: 're-rank' });
    if (body.captioner) await model(db, 'captioner', body.captioner, { graph: 'decoder', role: 'caption' });
    const row = await createCollection(db, {
      name: body.name,
      embedder,
      reranker: body.reranker ?? null,
      captioner: body.captioner ?? null,
      ...(body.hnsw ? { hnswM: body.hnsw.m, hnswEfConstruction: body.hnsw.efConstruction, hnswEfSearch: body.hnsw.efSearch } : {}),
    });
    return c.json(toCollection(row), 201);
  });
}

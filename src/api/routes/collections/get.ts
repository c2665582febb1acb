import { createRoute } from '@hono/zod-openapi';
import { getCollection } from '../../../db/queries/collections.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { canAccess, requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonContent } from '../../schemas.ts';
import type { App, ApiEnv } from '../../types.ts';
import type { Context } from 'hono';
import { Collection, toCollection } from './schema.ts';

export const route = createRoute({
  operationId: 'getCollection',
  tags: ['collections'],
  summary: 'Get a collection',
  method: 'get',
  path: '/v1/collections/{id}',
  middleware: [requireScope('read')] as const,
  request: { params: IdParam },
  responses: {
    200: jsonContent(Collection, 'The collection'),
    ...errorResponses(400, 403, 404),
  },
});
export type GetCollectionResponse = Collection;

/** The collection if this key may use it; otherwise the same 404 as for one that does not exist. */
export async function visibleCollection(c: Context<ApiEnv>, id: string) {
  const row = canAccess(c.var.principal, id) ? await getCollection(c.var.ctx.db, { id }) : undefined;
  if (!row) throw new ApiError('not_found', `No collection ${id}.`);
  return row;
}

export function registerGetCollection(app: App) {
  app.openapi(route, async (c) => {
    const row = await visibleCollection(c, c.req.valid('param').id);
    return c.json(toCollection(row), 200);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { deleteCollection } from '../../../db/queries/collections.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { canAccess, requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';

export const route = createRoute({
  operationId: 'deleteCollection',
  tags: ['collections'],
  summary: 'Delete a collection with its images',
  method: 'delete',
  path: '/v1/collections/{id}',
  middleware: [requireScope('admin')] as const,
  request: { params: IdParam },
  responses: {
    204: { description: 'Deleted' },
    ...errorResponses(400, 403, 404),
  },
});
export type DeleteCollectionResponse = null;

export function registerDeleteCollection(app: App) {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const deleted = canAccess(c.var.principal, id) && (await deleteCollection(c.var.ctx.db, id));
    if (!deleted) throw new ApiError('not_found', `No collection ${id}.`);
    return c.body(null, 204);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { deleteCollection } from '../../../db/queries/collections.ts';
import { collectionModels } from '../../../reextract/versions.ts';
import { forgetImages } from '../../../storage/purge.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { canAccess, requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';

export const route = createRoute({
  operationId: 'deleteCollection',
  tags: ['collections'],
  summary: 'Delete a collection with its images',
  description: 'Its images leave Postgres and search at once; their stored originals, thumbnails and token features are removed right after the answer, except blobs another collection still holds.',
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
    const { ctx } = c.var;
    const deleted = canAccess(c.var.principal, id) ? await deleteCollection(ctx.db, id) : undefined;
    if (!deleted) throw new ApiError('not_found', `No collection ${id}.`);
    // Its images are gone from Postgres and search; their blobs and token features go after the answer.
    ctx.background(`purge collection ${id}`, async () => ({
      images: deleted.images.length,
      originalsRemoved: await forgetImages(ctx, collectionModels(deleted.collection), deleted.images),
    }));
    return c.body(null, 204);
  });
}

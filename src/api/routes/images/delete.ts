import { createRoute } from '@hono/zod-openapi';
import { getCollection } from '../../../db/queries/collections.ts';
import { deleteImage } from '../../../db/queries/images.ts';
import { collectionModels } from '../../../reextract/versions.ts';
import { forgetImages } from '../../../storage/purge.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleImage } from './schema.ts';

export const route = createRoute({
  operationId: 'deleteImage',
  tags: ['images'],
  summary: 'Delete an image',
  description: 'Searches stop returning it at once; its index entry is removed as the index follows Postgres. Its stored original, thumbnail and token features are removed before the answer, unless another collection holds the same bytes.',
  method: 'delete',
  path: '/v1/images/{id}',
  middleware: [requireScope('write')] as const,
  request: { params: IdParam },
  responses: {
    204: { description: 'Deleted' },
    ...errorResponses(400, 403, 404),
  },
});
export type DeleteImageResponse = null;

export function registerDeleteImage(app: App) {
  app.openapi(route, async (c) => {
    const { ctx } = c.var;
    const image = await visibleImage(c, c.req.valid('param').id);
    if (!(await deleteImage(ctx.db, image.id))) throw new ApiError('not_found', `No image ${image.id}.`);
    const collection = await getCollection(ctx.db, { id: image.collectionId });
    // Before the answer: once it is 204, the bytes are gone (unless another collection holds the same image).
    await forgetImages(ctx, collection ? collectionModels(collection) : [], [image]);
    return c.body(null, 204);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { deleteImage } from '../../../db/queries/images.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleImage } from './schema.ts';

export const route = createRoute({
  operationId: 'deleteImage',
  tags: ['images'],
  summary: 'Delete an image',
  description: 'Searches stop returning it at once; its index entry is removed as the index follows Postgres.',
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
    const image = await visibleImage(c, c.req.valid('param').id);
    if (!(await deleteImage(c.var.ctx.db, image.id))) throw new ApiError('not_found', `No image ${image.id}.`);
    return c.body(null, 204);
  });
}

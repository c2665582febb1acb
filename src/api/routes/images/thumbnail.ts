import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { download } from './download.ts';

export const route = createRoute({
  operationId: 'getThumbnail',
  tags: ['images'],
  summary: 'Download the thumbnail (WebP)',
  method: 'get',
  path: '/v1/images/{id}/thumbnail',
  middleware: [requireScope('read')] as const,
  request: { params: IdParam },
  responses: {
    200: {
      description: 'A small WebP preview',
      content: { 'image/webp': { schema: z.string().openapi({ type: 'string', format: 'binary' }) } },
    },
    ...errorResponses(400, 403, 404),
  },
});
export type GetThumbnailResponse = Blob;

export function registerGetThumbnail(app: App) {
  app.openapi(route, (c) => download(c, c.req.valid('param').id, 'thumbnail') as never);
}

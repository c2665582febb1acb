import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { download } from './download.ts';

export const route = createRoute({
  operationId: 'getOriginal',
  tags: ['images'],
  summary: 'Download the original bytes',
  method: 'get',
  path: '/v1/images/{id}/original',
  middleware: [requireScope('read')] as const,
  request: { params: IdParam },
  responses: {
    200: {
      description: 'The image as uploaded, with its media type',
      content: { 'image/*': { schema: z.string().openapi({ type: 'string', format: 'binary' }) } },
    },
    ...errorResponses(400, 403, 404),
  },
});
export type GetOriginalResponse = Blob;

export function registerGetOriginal(app: App) {
  app.openapi(route, (c) => download(c, c.req.valid('param').id, 'original') as never);
}

import { createRoute } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Image, toImage, visibleImage } from './schema.ts';

export const route = createRoute({
  operationId: 'getImage',
  tags: ['images'],
  summary: 'Get an image',
  method: 'get',
  path: '/v1/images/{id}',
  middleware: [requireScope('read')] as const,
  request: { params: IdParam },
  responses: {
    200: jsonContent(Image, 'The image'),
    ...errorResponses(400, 403, 404),
  },
});
export type GetImageResponse = Image;

export function registerGetImage(app: App) {
  app.openapi(route, async (c) => c.json(toImage(await visibleImage(c, c.req.valid('param').id)), 200));
}

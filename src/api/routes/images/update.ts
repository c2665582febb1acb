import { createRoute, z } from '@hono/zod-openapi';
import { updateImage } from '../../../db/queries/images.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Image, Metadata, toImage, visibleImage } from './schema.ts';

const Body = z.strictObject({ metadata: Metadata.openapi({ description: 'Replaces the metadata as a whole' }) }).openapi('ImagePatch');

export const route = createRoute({
  operationId: 'updateImage',
  tags: ['images'],
  summary: "Replace an image's metadata",
  method: 'patch',
  path: '/v1/images/{id}',
  middleware: [requireScope('write')] as const,
  request: { params: IdParam, body: jsonBody(Body) },
  responses: {
    200: jsonContent(Image, 'The updated image'),
    ...errorResponses(400, 403, 404, 413, 415),
  },
});
export type UpdateImageResponse = Image;

export function registerUpdateImage(app: App) {
  app.openapi(route, async (c) => {
    const image = await visibleImage(c, c.req.valid('param').id);
    const updated = await updateImage(c.var.ctx.db, image.id, { metadata: c.req.valid('json').metadata });
    return c.json(toImage(updated), 200);
  });
}

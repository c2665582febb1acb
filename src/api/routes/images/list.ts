import { createRoute, z } from '@hono/zod-openapi';
import { listImages } from '../../../db/queries/images.ts';
import { imageStatus } from '../../../db/schema/index.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonContent, pageQuery } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { Image, MetadataField, toImage } from './schema.ts';

const Query = z.strictObject({
  status: z.enum(imageStatus).optional().openapi({ param: { name: 'status', in: 'query' } }),
  metadata: MetadataField.optional().openapi({
    param: { name: 'metadata', in: 'query' },
    description: 'Images whose metadata contains this JSON object, e.g. {"color":"red"}',
  }),
  ...pageQuery,
});

const ImagePage = z.object({ items: z.array(Image), nextCursor: z.string().nullable() }).openapi('ImagePage');

export const route = createRoute({
  operationId: 'listImages',
  tags: ['images'],
  summary: "List a collection's images, oldest first",
  method: 'get',
  path: '/v1/collections/{id}/images',
  middleware: [requireScope('read')] as const,
  request: { params: IdParam, query: Query },
  responses: {
    200: jsonContent(ImagePage, 'A page of images'),
    ...errorResponses(400, 403, 404),
  },
});
export type ListImagesResponse = typeof ImagePage._output;

export function registerListImages(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    const q = c.req.valid('query');
    const page = await listImages(c.var.ctx.db, {
      collectionId: collection.id,
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.metadata ? { metadata: q.metadata } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
    return c.json({ items: page.items.map(toImage), nextCursor: page.nextCursor }, 200);
  });
}

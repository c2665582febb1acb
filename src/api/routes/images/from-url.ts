import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { ingestOne } from './ingest.ts';
import { IngestResult, Metadata, WaitQuery } from './schema.ts';

const Body = z
  .strictObject({
    url: z.string().min(1).max(8192).openapi({ example: 'https://example.com/cat.jpg' }),
    metadata: Metadata.optional(),
  })
  .openapi('ImageFromUrl');

export const route = createRoute({
  operationId: 'ingestImageFromUrl',
  tags: ['images'],
  summary: 'Fetch an image from a URL into a collection',
  description:
    'The server fetches the URL (http or https, public addresses only unless allow-listed, bounded in time, size and redirects). ' +
    'Answers as for an upload.',
  method: 'post',
  path: '/v1/collections/{id}/images/url',
  middleware: [requireScope('write')] as const,
  request: { params: IdParam, query: WaitQuery, body: jsonBody(Body) },
  responses: {
    200: jsonContent(IngestResult, 'The image is ready (or failed)'),
    202: jsonContent(IngestResult, 'Stored; extraction is queued'),
    ...errorResponses(400, 403, 404, 413, 415, 422, 502, 503, 504),
  },
});
export type IngestImageFromUrlResponse = IngestResult;

export function registerIngestImageFromUrl(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    const { url, metadata } = c.req.valid('json');
    const { body, status } = await ingestOne(c, collection, { kind: 'url', url, ...(metadata ? { metadata } : {}) }, c.req.valid('query').wait);
    return c.json(body, status);
  });
}

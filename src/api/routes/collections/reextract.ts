import { createRoute } from '@hono/zod-openapi';
import { startReextraction } from '../../../reextract/start.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { toJob } from '../jobs/schema.ts';
import { visibleCollection } from './get.ts';
import { Reextract, Reextraction, toCollection } from './schema.ts';

export const route = createRoute({
  operationId: 'reextractCollection',
  tags: ['collections'],
  summary: 'Re-extract a collection with another embedder version',
  description:
    'Starts a job that embeds every image with `model` into a shadow version (new rows and a new index) while searches ' +
    'keep using the active version, checks that the shadow holds a row for every ready image, and switches the collection ' +
    'in one transaction. Images ingested meanwhile are written to both versions. The old version stays as `previousEmbedder` ' +
    '(roll back with POST /v1/collections/{id}/rollback, delete with DELETE /v1/collections/{id}/versions/{model}). A cancel ' +
    'or crash leaves the active version unchanged; a later re-extraction embeds only the images the shadow lacks. ' +
    '202 when a job was started, 200 when one was already re-extracting the collection to this model.',
  method: 'post',
  path: '/v1/collections/{id}/reextract',
  middleware: [requireScope('admin')] as const,
  request: { params: IdParam, body: jsonBody(Reextract) },
  responses: {
    202: jsonContent(Reextraction, 'Started'),
    200: jsonContent(Reextraction, 'Already running'),
    ...errorResponses(400, 403, 404, 409, 413, 415, 503),
  },
});
export type ReextractCollectionResponse = Reextraction;

export function registerReextractCollection(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    const started = await startReextraction(c.var.ctx, collection.id, c.req.valid('json').model);
    const body = { collection: toCollection(started.collection), job: toJob(started.job) };
    return started.started ? c.json(body, 202) : c.json(body, 200);
  });
}

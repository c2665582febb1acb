import { createRoute } from '@hono/zod-openapi';
import { rollbackVersion } from '../../../reextract/versions.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from './get.ts';
import { Collection, toCollection } from './schema.ts';

export const route = createRoute({
  operationId: 'rollbackCollection',
  tags: ['collections'],
  summary: 'Search a collection by its previous embedder version again',
  description:
    'Swaps `embedder` and `previousEmbedder` in one transaction, after checking that the previous version holds a row for ' +
    'every ready image (ingest keeps it complete until it is deleted). 409 no_previous_version when there is none, ' +
    '409 version_incomplete when it lacks rows.',
  method: 'post',
  path: '/v1/collections/{id}/rollback',
  middleware: [requireScope('admin')] as const,
  request: { params: IdParam },
  responses: {
    200: jsonContent(Collection, 'The collection, searched by its previous version'),
    ...errorResponses(400, 403, 404, 409),
  },
});
export type RollbackCollectionResponse = Collection;

export function registerRollbackCollection(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    return c.json(toCollection(await rollbackVersion(c.var.ctx.db, collection.id)), 200);
  });
}

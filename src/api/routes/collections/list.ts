import { createRoute } from '@hono/zod-openapi';
import { listCollections } from '../../../db/queries/collections.ts';
import { errorResponses } from '../../errors.ts';
import { canAccess, requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { CollectionList, toCollection } from './schema.ts';

export const route = createRoute({
  operationId: 'listCollections',
  tags: ['collections'],
  summary: 'List the collections this key can use',
  method: 'get',
  path: '/v1/collections',
  middleware: [requireScope('read')] as const,
  responses: {
    200: jsonContent(CollectionList, 'The collections, by name'),
    ...errorResponses(403),
  },
});
export type ListCollectionsResponse = typeof CollectionList._output;

export function registerListCollections(app: App) {
  app.openapi(route, async (c) => {
    const rows = await listCollections(c.var.ctx.db);
    const visible = rows.filter((r) => canAccess(c.var.principal, r.id));
    return c.json({ items: visible.map(toCollection) }, 200);
  });
}

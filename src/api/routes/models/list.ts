import { createRoute } from '@hono/zod-openapi';
import { listModels } from '../../../db/queries/models.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { ModelList, toModel } from './schema.ts';

export const route = createRoute({
  operationId: 'listModels',
  tags: ['models'],
  summary: 'List registered models',
  method: 'get',
  path: '/v1/models',
  middleware: [requireScope('read')] as const,
  responses: {
    200: jsonContent(ModelList, 'Models, oldest first'),
    ...errorResponses(403),
  },
});
export type ListModelsResponse = typeof ModelList._output;

export function registerListModels(app: App) {
  app.openapi(route, async (c) => {
    const rows = await listModels(c.var.ctx.db);
    return c.json({ items: rows.map(toModel) }, 200);
  });
}

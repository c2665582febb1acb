import { createRoute, z } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { listKeys } from '../../keys.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { KeyList, toApiKey } from './schema.ts';

const Query = z.strictObject({
  includeRevoked: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true')
    .openapi({ param: { name: 'includeRevoked', in: 'query' } }),
});

export const route = createRoute({
  operationId: 'listKeys',
  tags: ['keys'],
  summary: 'List API keys (never their secrets)',
  method: 'get',
  path: '/v1/keys',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { query: Query },
  responses: {
    200: jsonContent(KeyList, 'Keys, newest first'),
    ...errorResponses(400, 403),
  },
});
export type ListKeysResponse = typeof KeyList._output;

export function registerListKeys(app: App) {
  app.openapi(route, async (c) => {
    const rows = await listKeys(c.var.ctx.db, { includeRevoked: c.req.valid('query').includeRevoked });
    return c.json({ items: rows.map(toApiKey) }, 200);
  });
}

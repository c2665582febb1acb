import { createRoute } from '@hono/zod-openapi';
import { ApiError, errorResponses } from '../../errors.ts';
import { revokeKey } from '../../keys.ts';
import { forgetKey, requireScope } from '../../middleware/auth.ts';
import { IdParam } from '../../schemas.ts';
import type { App } from '../../types.ts';

export const route = createRoute({
  operationId: 'revokeKey',
  tags: ['keys'],
  summary: 'Revoke an API key',
  description: 'The key stops working at once on this server and within seconds on the others. Revoking twice is fine.',
  method: 'delete',
  path: '/v1/keys/{id}',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { params: IdParam },
  responses: {
    204: { description: 'Revoked' },
    ...errorResponses(400, 403, 404),
  },
});
export type RevokeKeyResponse = null;

export function registerRevokeKey(app: App) {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const { db } = c.var.ctx;
    if (!(await revokeKey(db, id))) throw new ApiError('not_found', `No key ${id}.`);
    forgetKey(db, id);
    return c.body(null, 204);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { ApiError, errorResponses } from '../../errors.ts';
import { createKey, UnknownCollections } from '../../keys.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { CreatedKey, CreateKey, toApiKey } from './schema.ts';

export const route = createRoute({
  operationId: 'createKey',
  tags: ['keys'],
  summary: 'Create an API key',
  description: 'Needs an admin key not limited to collections. The secret is in the answer only.',
  method: 'post',
  path: '/v1/keys',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { body: jsonBody(CreateKey) },
  responses: {
    201: jsonContent(CreatedKey, 'The key and its secret'),
    ...errorResponses(400, 403, 413, 415, 422),
  },
});
export type CreateKeyResponse = typeof CreatedKey._output;

export function registerCreateKey(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json');
    try {
      const { key, apiKey } = await createKey(c.var.ctx.db, { name: body.name, scopes: body.scopes, collections: body.collections ?? null });
      return c.json({ key, apiKey: toApiKey(apiKey) }, 201);
    } catch (err) {
      if (err instanceof UnknownCollections) throw new ApiError('unknown_collection', `collections: ${err.message}.`, { extensions: { collections: err.ids } });
      throw err;
    }
  });
}

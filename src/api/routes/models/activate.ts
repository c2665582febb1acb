import { createRoute } from '@hono/zod-openapi';
import { and, eq, exists, isNull, ne, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { getModel, setActiveModel, type Model as Row } from '../../../db/queries/models.ts';
import { collections, images, models } from '../../../db/schema/index.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Model, ModelIdParam, toModel } from './schema.ts';

export const route = createRoute({
  operationId: 'activateModel',
  tags: ['models'],
  summary: 'Make a model the active one',
  description:
    'New collections use the active model by default. Activating a new version of a model that non-empty collections ' +
    'are searched by needs their images re-extracted; until re-extraction jobs exist this answers 409 reextraction_required.',
  method: 'post',
  path: '/v1/models/{id}/activate',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { params: ModelIdParam },
  responses: {
    200: jsonContent(Model, 'The model, now active'),
    ...errorResponses(400, 403, 404, 409),
  },
});
export type ActivateModelResponse = Model;

/** Non-empty collections searched by another version of this model's name. */
async function collectionsOnOtherVersions(db: Db, m: Row): Promise<{ id: string; name: string; embedder: string }[]> {
  return db
    .select({ id: collections.id, name: collections.name, embedder: collections.embedder })
    .from(collections)
    .innerJoin(models, eq(models.id, collections.embedder))
    .where(
      and(
        eq(models.name, m.name),
        ne(models.id, m.id),
        exists(db.select({ one: sql`1` }).from(images).where(and(eq(images.collectionId, collections.id), isNull(images.deletedAt)))),
      ),
    )
    .orderBy(collections.name);
}

export function registerActivateModel(app: App) {
  app.openapi(route, async (c) => {
    const { db } = c.var.ctx;
    const { id } = c.req.valid('param');
    const model = await getModel(db, id);
    if (!model) throw new ApiError('not_found', `No model ${id} is registered.`);
    if (model.active) return c.json(toModel(model), 200);
    const stale = await collectionsOnOtherVersions(db, model);
    if (stale.length) {
      const names = stale.map((s) => `${s.name} (${s.embedder})`).join(', ');
      throw new ApiError(
        'reextraction_required',
        `Activating ${id} needs re-extraction of ${stale.length} non-empty collection(s) searched by another version: ${names}. ` +
          'Re-extraction jobs are not available yet; create a new collection with this embedder instead.',
        { extensions: { collections: stale.map((s) => s.id) } },
      );
    }
    return c.json(toModel(await setActiveModel(db, id)), 200);
  });
}

import { createRoute, z } from '@hono/zod-openapi';
import { getCollection } from '../../../db/queries/collections.ts';
import { collectionModels, deleteVersion } from '../../../reextract/versions.ts';
import { forgetCollectionTokens } from '../../../storage/purge.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from './get.ts';
import { Collection, ModelParam, toCollection } from './schema.ts';

const DeletedVersion = z
  .object({ collection: Collection, model: z.string(), deleted: z.number().int().openapi({ description: 'Embedding rows deleted' }) })
  .openapi('DeletedVersion');

export const route = createRoute({
  operationId: 'deleteCollectionVersion',
  tags: ['collections'],
  summary: "Delete one embedder version of a collection",
  description:
    "Deletes the version's embedding rows through the change stream (replicas drop them too), its index files and, after " +
    "the answer, its token features (unless the model still re-ranks the collection); it is no " +
    'longer the rollback target. The active version is refused (409 version_active), and so is a shadow a running ' +
    're-extraction is filling (409 reextraction_running: cancel the job first).',
  method: 'delete',
  path: '/v1/collections/{id}/versions/{model}',
  middleware: [requireScope('admin')] as const,
  request: { params: ModelParam },
  responses: {
    200: jsonContent(DeletedVersion, 'Deleted'),
    ...errorResponses(400, 403, 404, 409),
  },
});
export type DeleteCollectionVersionResponse = z.infer<typeof DeletedVersion>;

export function registerDeleteCollectionVersion(app: App) {
  app.openapi(route, async (c) => {
    const { ctx } = c.var;
    const { id, model } = c.req.valid('param');
    const collection = await visibleCollection(c, id);
    const { deleted } = await deleteVersion(ctx.db, { collectionId: collection.id, modelId: model });
    await ctx.indexes.drop(collection.id, model);
    const after = (await getCollection(ctx.db, { id: collection.id })) ?? collection;
    // Its token features go after the answer, unless the model still re-ranks the collection.
    if (!collectionModels(after).includes(model)) {
      ctx.background(`forget ${model} token features of collection ${collection.id}`, async () => ({ images: await forgetCollectionTokens(ctx, collection.id, model) }));
    }
    return c.json({ collection: toCollection(after), model, deleted }, 200);
  });
}

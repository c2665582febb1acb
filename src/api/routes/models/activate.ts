import { createRoute, z } from '@hono/zod-openapi';
import { NotFound } from '../../../db/errors.ts';
import { activateModel } from '../../../reextract/start.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Reextraction, toCollection } from '../collections/schema.ts';
import { toJob } from '../jobs/schema.ts';
import { Model, ModelIdParam, toModel } from './schema.ts';

const ActivatedModel = z
  .object({
    model: Model,
    reextractions: z.array(Reextraction).openapi({
      description: 'One re-extraction job per collection searched by another version of this model (empty when none is)',
    }),
  })
  .openapi('ActivatedModel');
export type ActivateModelResponse = z.infer<typeof ActivatedModel>;

export const route = createRoute({
  operationId: 'activateModel',
  tags: ['models'],
  summary: 'Make a model the active one',
  description:
    'New collections use the active model by default. Every collection searched by another version of this model (same ' +
    'name) is re-extracted with it: the answer lists one job per collection (see POST /v1/collections/{id}/reextract; ' +
    'searches keep using the old version until the job switches the collection). A collection already being re-extracted ' +
    'to yet another version refuses the activation with 409 reextraction_running, before anything changes.',
  method: 'post',
  path: '/v1/models/{id}/activate',
  middleware: [requireScope('admin', { allCollections: true })] as const,
  request: { params: ModelIdParam },
  responses: {
    200: jsonContent(ActivatedModel, 'The model, now active, and the re-extraction jobs it started or found running'),
    ...errorResponses(400, 403, 404, 409, 503),
  },
});

export function registerActivateModel(app: App) {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const { model, reextractions } = await activateModel(c.var.ctx, id).catch((err: unknown) => {
      if (err instanceof NotFound && err.resource === 'model') throw new ApiError('not_found', `No model ${id} is registered.`);
      throw err;
    });
    const jobs = reextractions.map((r) => ({ collection: toCollection(r.collection), job: toJob(r.job) }));
    return c.json({ model: toModel(model), reextractions: jobs }, 200);
  });
}

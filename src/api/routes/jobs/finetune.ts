import { createRoute, z } from '@hono/zod-openapi';
import { finetuneRequest, FinetuneRefused, startFinetune } from '../../../finetune/start.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent, Uuid } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { Job, toJob } from './schema.ts';

const Body = finetuneRequest.extend({ collection: Uuid.openapi({ description: 'The collection whose embedder is fine-tuned' }) }).openapi('FinetuneRequest', {
  description:
    'source.kind "captions" (the default) trains on the collection\'s ready images with their captions: a caption set by a person ' +
    'as metadata.caption (PATCH /v1/images/{id}) wins over the model\'s, and include "edited" keeps only those. source.kind "pairs" ' +
    'carries uploaded pairs (a JSONL file read into this array, as `mira finetune --pairs FILE` does), each naming an image already ' +
    'in the collection by id or by the sha256 of its bytes; the body is capped by MIRA_MAX_JSON_BYTES.',
});

export const route = createRoute({
  operationId: 'finetune',
  tags: ['jobs'],
  summary: "Fine-tune a collection's BLIP embedder on image–caption pairs",
  description:
    'Queues a job that runs the Python trainer (MIRA_PYTHON, on the GPU when torch sees one) on the pairs, holding out `holdout` ' +
    'of the images. The new version is registered only if held-out text→image R@1 with ITC (how the index ranks) improves; ' +
    'the job result carries both figures before and after, with and without ITM re-ranking. With `reextract` the collection is ' +
    're-extracted with the new version, otherwise it keeps its embedder. A failure (no usable Python, the trainer failing or running ' +
    'past timeoutSeconds, a bad bundle) leaves every model and collection unchanged and records why in the job. Follow it with GET /v1/jobs/{id}.',
  method: 'post',
  path: '/v1/jobs/finetune',
  middleware: [requireScope('admin')] as const,
  request: { body: jsonBody(Body) },
  responses: {
    202: jsonContent(Job, 'Queued'),
    ...errorResponses(400, 403, 404, 413, 415, 422, 503),
  },
});
export type FinetuneResponse = z.infer<typeof Job>;

export function registerFinetune(app: App) {
  app.openapi(route, async (c) => {
    const { collection: id, ...req } = c.req.valid('json');
    const collection = await visibleCollection(c, id);
    const job = await startFinetune(c.var.ctx, collection, req).catch((err: unknown) => {
      if (!(err instanceof FinetuneRefused)) throw err;
      const errors = err.pointer ? { errors: [{ location: 'body', pointer: err.pointer, message: err.message }] } : {};
      throw new ApiError(err.code, err.message, { extensions: errors });
    });
    return c.json(toJob(job), 202);
  });
}

import { createRoute, z } from '@hono/zod-openapi';
import { extractEntry, MAX_INLINE_ENTRIES } from '../../../extract/payload.ts';
import { startExtraction } from '../../../extract/start.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonBody, jsonContent, Uuid } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { Job, toJob } from './schema.ts';

const Body = z
  .strictObject({
    collection: Uuid.optional().openapi({ description: "Extract this collection's ready images; with path or entries, embed those files with its embedder" }),
    path: z.string().min(1).max(4096).optional().openapi({ description: 'A file, folder or .jsonl manifest under MIRA_INGEST_ROOT (the ingestion rules apply)' }),
    entries: z.array(extractEntry).min(1).max(MAX_INLINE_ENTRIES).optional().openapi({ description: 'Manifest lines: {path} or {url}, each with optional metadata' }),
    model: z.string().min(1).max(200).optional().openapi({ description: 'Without a collection: the embedder (default: the active model)' }),
    captions: z.boolean().optional().openapi({ description: "Caption files with the model's captioner (token ids too); a collection's stored captions are always written" }),
    chunkSize: z.number().int().min(1).max(4096).optional().openapi({ description: 'Items per durable step (default 256): a resumed try redoes at most one' }),
  })
  .refine((b) => !(b.path && b.entries), { message: 'give path or entries, not both', path: ['entries'] })
  .refine((b) => b.collection || b.path || b.entries, { message: 'give a collection, a path or entries' })
  .refine((b) => !(b.collection && b.model), { message: "a collection's files are embedded with its own embedder", path: ['model'] })
  .openapi('ExtractRequest');

export const route = createRoute({
  operationId: 'extract',
  tags: ['jobs'],
  summary: 'Extract features in bulk into files (embeddings.npy, items.jsonl)',
  description:
    "Queues a job that writes, under the server's data folder, `embeddings.npy` (float32, C order, one L2-normalized row per item: " +
    '`numpy.load` opens it), `items.jsonl` (one line per row: row, imageId, sha256, file or url, caption, metadata), `failed.jsonl` ' +
    '(items that could not be read) and `manifest.json` (model, dim, counts, row order). A collection gives its stored vectors, equal ' +
    'to POST /v1/embeddings for the same images; files and URLs are read under the ingestion rules. Progress (done, total, rate, ' +
    'etaSeconds) is in GET /v1/jobs/{id}; a crashed worker resumes at the first unfinished chunk; the files are listed by ' +
    'GET /v1/jobs/{id}/files once the job completes.',
  method: 'post',
  path: '/v1/jobs/extract',
  middleware: [requireScope('write')] as const,
  request: { body: jsonBody(Body) },
  responses: {
    202: jsonContent(Job, 'Queued'),
    ...errorResponses(400, 403, 404, 413, 415, 503),
  },
});
export type ExtractResponse = z.infer<typeof Job>;

export function registerExtract(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json');
    const collection = body.collection ? await visibleCollection(c, body.collection) : undefined;
    // A job outside any collection is visible to unlimited keys only: a limited key could not follow it.
    if (!collection && c.var.principal.collections !== null) throw new ApiError('forbidden', 'A key limited to collections must name one of them.');
    const files = body.path ? ({ kind: 'path', path: body.path } as const) : body.entries ? ({ kind: 'entries', entries: body.entries } as const) : undefined;
    const job = await startExtraction(c.var.ctx, {
      ...(collection ? { collection } : {}),
      ...(files ? { files } : {}),
      ...(body.model ? { modelId: body.model } : {}),
      ...(body.captions === undefined ? {} : { captions: body.captions }),
      ...(body.chunkSize === undefined ? {} : { chunkSize: body.chunkSize }),
    });
    return c.json(toJob(job), 202);
  });
}

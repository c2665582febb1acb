import { createRoute, z } from '@hono/zod-openapi';
import type { IngestSource } from '../../../ingest/sources.ts';
import { errorResponses, toProblem } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { IdParam, jsonBody, jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { ingestOne } from './ingest.ts';
import { IngestResult, Metadata } from './schema.ts';

export const BATCH_MAX = 100;
/** Items fetched and decoded at once; the rest wait their turn. */
const CONCURRENCY = 4;

const Item = z.union([
  z.strictObject({ url: z.string().min(1).max(8192), metadata: Metadata.optional() }),
  z.strictObject({ path: z.string().min(1).max(4096).openapi({ description: 'A file under the server ingest root (MIRA_INGEST_ROOT)' }), metadata: Metadata.optional() }),
]);

const Body = z.strictObject({ items: z.array(Item).min(1).max(BATCH_MAX) }).openapi('ImageBatch');

const ItemResult = z
  .object({
    index: z.number().int(),
    result: IngestResult.optional(),
    error: z.object({ code: z.string(), status: z.number().int(), detail: z.string() }).optional(),
  })
  .openapi('ImageBatchItem');

const BatchResult = z
  .object({ items: z.array(ItemResult), accepted: z.number().int(), failed: z.number().int() })
  .openapi('ImageBatchResult');

export const route = createRoute({
  operationId: 'ingestImageBatch',
  tags: ['images'],
  summary: `Ingest up to ${BATCH_MAX} images by URL or server path`,
  description: 'Each item is ingested as if sent alone (queued, not waited for); a bad item gets its own error and does not stop the others.',
  method: 'post',
  path: '/v1/collections/{id}/images/batch',
  middleware: [requireScope('write')] as const,
  request: { params: IdParam, body: jsonBody(Body) },
  responses: {
    200: jsonContent(BatchResult, 'One result or error per item, in order'),
    ...errorResponses(400, 403, 404, 413, 415),
  },
});
export type IngestImageBatchResponse = typeof BatchResult._output;

export function registerIngestImageBatch(app: App) {
  app.openapi(route, async (c) => {
    const collection = await visibleCollection(c, c.req.valid('param').id);
    const items = c.req.valid('json').items;
    const out: z.infer<typeof ItemResult>[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        const it = items[i]!;
        const meta = it.metadata ? { metadata: it.metadata } : {};
        const source: IngestSource = 'url' in it ? { kind: 'url', url: it.url, ...meta } : { kind: 'path', path: it.path, ...meta };
        try {
          out[i] = { index: i, result: (await ingestOne(c, collection, source, false)).body };
        } catch (err) {
          const p = toProblem(err);
          if (p.status >= 500 && p.code === 'internal') c.var.log.error({ err, index: i }, 'batch item failed');
          out[i] = { index: i, error: { code: p.code, status: p.status, detail: p.detail } };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
    const failed = out.filter((r) => r.error).length;
    return c.json({ items: out, accepted: out.length - failed, failed }, 200);
  });
}

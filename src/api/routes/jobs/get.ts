import { createRoute } from '@hono/zod-openapi';
import { parseIngestJobId } from '../../../ingest/pipeline.ts';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleIngestJob } from './ingest-job.ts';
import { Job, JobIdParam, toJob, visibleJob } from './schema.ts';

export const route = createRoute({
  operationId: 'getJob',
  tags: ['jobs'],
  summary: 'Get a job with its progress',
  description:
    'Also resolves the ingest job ids that image uploads return (`ingest_<collectionId>_<sha256>`), from the image: ' +
    'pending is queued or running, ready is completed, failed is failed with the reason; `result.imageId` names the image.',
  method: 'get',
  path: '/v1/jobs/{id}',
  middleware: [requireScope('read')] as const,
  request: { params: JobIdParam },
  responses: {
    200: jsonContent(Job, 'The job'),
    ...errorResponses(400, 403, 404),
  },
});
export type GetJobResponse = Job;

export function registerGetJob(app: App) {
  app.openapi(route, async (c) => {
    const id = c.req.valid('param').id;
    const ingest = parseIngestJobId(id);
    if (ingest) return c.json(await visibleIngestJob(c, id, ingest), 200);
    return c.json(toJob(await visibleJob(c, id)), 200);
  });
}

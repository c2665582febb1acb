import { createRoute, z } from '@hono/zod-openapi';
import { listJobs } from '../../../db/queries/jobs.ts';
import { jobStates, listedJobKinds } from '../../../db/schema/index.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent, pageQuery, Uuid } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { visibleCollection } from '../collections/get.ts';
import { JobPage, toJob } from './schema.ts';

const Query = z.strictObject({
  state: z.enum(jobStates).optional().openapi({ param: { name: 'state', in: 'query' } }),
  kind: z.enum(listedJobKinds).optional().openapi({
    param: { name: 'kind', in: 'query' },
    description: 'Only jobs of this kind. Ingest jobs are not listed: there is one per image, at GET /v1/jobs/{id}',
  }),
  collectionId: Uuid.optional().openapi({
    param: { name: 'collectionId', in: 'query' },
    description: 'Required for a key limited to several collections',
  }),
  ...pageQuery,
});

export const route = createRoute({
  operationId: 'listJobs',
  tags: ['jobs'],
  summary: 'List jobs, newest first',
  method: 'get',
  path: '/v1/jobs',
  middleware: [requireScope('read')] as const,
  request: { query: Query },
  responses: {
    200: jsonContent(JobPage, 'A page of jobs'),
    ...errorResponses(400, 403, 404),
  },
});
export type ListJobsResponse = typeof JobPage._output;

export function registerListJobs(app: App) {
  app.openapi(route, async (c) => {
    const q = c.req.valid('query');
    const limited = c.var.principal.collections;
    let collectionId = q.collectionId;
    if (!collectionId && limited?.size === 1) collectionId = [...limited][0];
    if (!collectionId && limited) throw new ApiError('invalid_request', 'query collectionId: required for a key limited to several collections.');
    if (collectionId) await visibleCollection(c, collectionId);
    const page = await listJobs(c.var.ctx.db, {
      limit: q.limit,
      ...(q.state ? { state: q.state } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(collectionId ? { collectionId } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
    return c.json({ items: page.items.map(toJob), nextCursor: page.nextCursor }, 200);
  });
}

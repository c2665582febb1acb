import { createRoute } from '@hono/zod-openapi';
import { errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Job, JobIdParam, toJob, visibleJob } from './schema.ts';

export const route = createRoute({
  operationId: 'getJob',
  tags: ['jobs'],
  summary: 'Get a job with its progress',
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
    const job = await visibleJob(c, c.req.valid('param').id);
    return c.json(toJob(job), 200);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { cancelJob, JobAlreadyFinished } from '../../../jobs/records.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Job, JobIdParam, toJob, visibleJob } from './schema.ts';

export const route = createRoute({
  operationId: 'cancelJob',
  tags: ['jobs'],
  summary: 'Cancel a queued or running job',
  description:
    'A queued job is removed from the queue; a running one, in any worker process, stops at its next check (within about a second) and is not retried. ' +
    'Ingest jobs (ids from uploads) cannot be cancelled: delete the image instead. A finished job answers 409.',
  method: 'post',
  path: '/v1/jobs/{id}/cancel',
  middleware: [requireScope('write')] as const,
  request: { params: JobIdParam },
  responses: {
    200: jsonContent(Job, 'The job, now cancelled'),
    ...errorResponses(400, 403, 404, 409, 503),
  },
});
export type CancelJobResponse = Job;

export function registerCancelJob(app: App) {
  app.openapi(route, async (c) => {
    const { db, queue } = c.var.ctx;
    const job = await visibleJob(c, c.req.valid('param').id);
    const cancelled = await cancelJob(db, queue, job).catch((err: unknown) => {
      if (!(err instanceof JobAlreadyFinished)) throw err;
      throw new ApiError('job_finished', err.message, { extensions: { state: err.job.state } });
    });
    return c.json(toJob(cancelled), 200);
  });
}

import { createRoute } from '@hono/zod-openapi';
import { updateJob } from '../../../db/queries/jobs.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Job, JobIdParam, toJob, visibleJob } from './schema.ts';

export const route = createRoute({
  operationId: 'cancelJob',
  tags: ['jobs'],
  summary: 'Cancel a queued or running job',
  description: 'A queued job is removed from the queue; a running one stops at its next check. A finished job answers 409.',
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
    if (job.state === 'cancelled') return c.json(toJob(job), 200);
    const finished = () => new ApiError('job_finished', `Job ${job.id} has already finished (${job.state}).`, { extensions: { state: job.state } });
    if (job.state !== 'queued' && job.state !== 'running') throw finished();
    // The record first: a worker that picks the job up now sees it cancelled.
    const cancelled = await updateJob(db, job.id, { state: 'cancelled', error: 'cancelled by request' }, { from: ['queued', 'running'] });
    if (!cancelled) throw finished();
    await queue.cancel(job.id);
    return c.json(toJob(cancelled), 200);
  });
}

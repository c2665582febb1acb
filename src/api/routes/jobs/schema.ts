import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getJob, type Job as Row } from '../../../db/queries/jobs.ts';
import { jobKinds, jobStates } from '../../../db/schema/index.ts';
import { ApiError } from '../../errors.ts';
import { canAccess } from '../../middleware/auth.ts';
import { iso, isoOrNull, Timestamp, Uuid } from '../../schemas.ts';
import type { ApiEnv } from '../../types.ts';

export const JobIdParam = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(300)
    .regex(/^[A-Za-z0-9._:-]+$/)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'ingest_0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10_9f86d0' }),
});

export const Progress = z
  .object({ done: z.number(), total: z.number() })
  .catchall(z.number())
  .openapi('JobProgress', { description: 'done of total, plus figures particular to the job kind' });

export const Job = z
  .object({
    id: z.string(),
    kind: z.enum(jobKinds),
    state: z.enum(jobStates),
    collectionId: Uuid.nullable(),
    progress: Progress,
    counts: z.record(z.string(), z.number()),
    error: z.string().nullable(),
    attempts: z.number().int(),
    result: z.unknown().optional(),
    createdAt: Timestamp,
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    updatedAt: Timestamp,
  })
  .openapi('Job');
export type Job = z.infer<typeof Job>;

export const JobPage = z
  .object({ items: z.array(Job), nextCursor: z.string().nullable() })
  .openapi('JobPage');

export function toJob(j: Row): Job {
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    collectionId: j.collectionId,
    progress: j.progress as Job['progress'],
    counts: (j.counts ?? {}) as Record<string, number>,
    error: j.error,
    attempts: j.attempts,
    ...(j.result === null || j.result === undefined ? {} : { result: j.result }),
    createdAt: iso(j.createdAt),
    startedAt: isoOrNull(j.startedAt),
    finishedAt: isoOrNull(j.finishedAt),
    updatedAt: iso(j.updatedAt),
  };
}

/** The job if this key may see it (jobs outside any collection: unlimited keys only); else 404. */
export async function visibleJob(c: Context<ApiEnv>, id: string): Promise<Row> {
  const job = await getJob(c.var.ctx.db, id);
  const p = c.var.principal;
  const visible = job && (p.collections === null || (job.collectionId !== null && canAccess(p, job.collectionId)));
  if (!visible) throw new ApiError('not_found', `No job ${id}.`);
  return job;
}

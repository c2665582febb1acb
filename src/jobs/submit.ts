import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import type { AppContext } from '../context.ts';
import { createJob, updateJob, type Job } from '../db/queries/jobs.ts';
import { processors } from './processors/index.ts';
import type { JobKind, Processor } from './types.ts';

export interface SubmitOptions {
  collectionId?: string | null;
  /** Idempotency: a job with this id that exists already is returned as it is. */
  id?: string;
}

function processorOf(kind: JobKind): Processor<unknown, unknown> {
  const proc = processors.find((p) => p.kind === kind);
  if (!proc) throw new Error(`job kind ${kind} has no processor`);
  return proc;
}

/**
 * Validates the payload with the kind's schema, records the job in Postgres (queued) and then
 * queues it, so a job is durable before anyone is told about it. A bad payload throws 400
 * `invalid_payload` and stores nothing. When the queue refuses a new job (Redis down), its record
 * is marked failed before the error goes up: the caller was told no, so it must never run.
 */
export async function submitJob(ctx: AppContext, kind: JobKind, payload: unknown, opts: SubmitOptions = {}): Promise<Job> {
  const parsed = processorOf(kind).payload.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(root)';
    throw new ApiError('invalid_payload', `Invalid ${kind} job payload: ${field}: ${issue.message}`, {
      extensions: { errors: parsed.error.issues.map((i) => ({ location: 'body', pointer: i.path.map((p) => `/${String(p)}`).join(''), message: i.message })) },
    });
  }
  const id = opts.id ?? `${kind}_${randomUUID()}`;
  const { job, created } = await createJob(ctx.db, { id, kind, collectionId: opts.collectionId ?? null, payload: parsed.data });
  if (job.kind !== kind) throw new ApiError('conflict', `Job ${id} exists with kind ${job.kind}.`);
  // A job that is running or finished is not queued again; a queued one is (the queue dedupes by id).
  if (!created && job.state !== 'queued') return job;
  try {
    await ctx.queue.enqueue(kind, job.payload, { jobId: id });
  } catch (err) {
    if (created) await updateJob(ctx.db, id, { state: 'failed', error: `not queued: ${(err as Error).message}` }, { from: ['queued'] });
    throw err;
  }
  return job;
}

import type { z } from 'zod';
import type { jobKinds } from '../db/schema/jobs.ts';

export type JobKind = (typeof jobKinds)[number];

export interface Progress {
  done: number;
  total: number;
  [figure: string]: number;
}

/** What a processor gets besides its payload. */
export interface JobRun {
  id: string;
  /** 1 for the first try. */
  attempt: number;
  /** Aborted on cancel or shutdown; long processors check it between items. */
  signal: AbortSignal;
  progress(p: Progress): Promise<void>;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface QueueConfig {
  attempts: number;
  /** First retry delay; doubles each time. */
  backoffMs: number;
  concurrency: number;
  /** Finished jobs kept in Redis (Postgres keeps the history). */
  keepCompleted: number;
  keepFailed: number;
}

/**
 * One processor per job kind, called the same way by BullMQ workers and by the in-process runner.
 * `C` is the application context the processor needs (database, stores, models).
 */
export interface Processor<C, P = unknown> {
  kind: JobKind;
  payload: z.ZodType<P>;
  queue: QueueConfig;
  process(ctx: C, payload: P, run: JobRun): Promise<unknown>;
}

/** A failure that retrying cannot fix (bad input, bad payload): recorded, never retried. */
export class PermanentJobError extends Error {
  constructor(
    message: string,
    readonly code = 'job_failed',
  ) {
    super(message);
  }
}

export interface EnqueueOptions {
  /** Idempotency: a job with this id that is still queued or running is not added again. */
  jobId: string;
}

export interface EnqueueManyOptions {
  /**
   * A finished job (completed or failed, still kept in Redis) with the same id is removed so the
   * job runs again. Without it, BullMQ would treat the id as taken.
   */
  replaceFinished?: boolean;
}

export type QueuedJobState = 'active' | 'waiting' | 'unknown';

/** BullMQ with Redis, or in-process without: callers do not know which. */
export interface JobQueue {
  readonly kind: 'bullmq' | 'in-process';
  enqueue(kind: JobKind, payload: unknown, opts: EnqueueOptions): Promise<void>;
  enqueueMany(kind: JobKind, jobs: { payload: unknown; jobId: string }[], opts?: EnqueueManyOptions): Promise<void>;
  cancel(jobId: string): Promise<boolean>;
  /** What the queue knows of a job now: running, waiting (or delayed for a retry), or nothing. */
  state(kind: JobKind, jobId: string): Promise<QueuedJobState>;
  /** Waiting + active + delayed, per kind (metrics). */
  depths(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { withFields } from '../log.ts';
import { dbOf, runRecorded, STOPPED_ON_RECORD } from './records.ts';
import type { EnqueueManyOptions, EnqueueOptions, JobKind, JobQueue, JobRun, Processor, QueuedJobState } from './types.ts';

export interface BullOptions {
  redisUrl: string;
  /** Job lock duration; stalled jobs are checked every half of it (default 30 s). */
  lockMs?: number;
  /** Redis key prefix; tests use their own so they never see each other's jobs. */
  prefix?: string;
}

const queueName = (kind: JobKind) => `mira-${kind}`;

/** Redis cannot take the job now: the API answers 503 and the caller may retry. */
export class QueueUnavailable extends Error {
  readonly code = 'queue_unavailable';
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

async function unavailableOnFailure<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const msg = (err as Error).message;
    if (/writeable|Connection is closed|ECONNREFUSED|enableOfflineQueue|max retries/i.test(msg)) throw new QueueUnavailable(`Redis is unavailable: ${msg}`);
    throw err;
  }
}

/**
 * Producer side. Its Redis connection fails commands at once while Redis is down (no offline
 * queue), so an ingest request answers 503 quickly instead of hanging.
 */
export class BullJobQueue implements JobQueue {
  readonly kind = 'bullmq' as const;
  private readonly redis: Redis;
  private readonly queues = new Map<JobKind, Queue>();

  private constructor(
    private readonly table: Map<JobKind, Processor<any, any>>,
    private readonly opts: BullOptions,
    redis: Redis,
  ) {
    this.redis = redis;
    for (const kind of table.keys()) {
      this.queues.set(kind, new Queue(queueName(kind), { connection: this.redis, prefix: opts.prefix ?? 'mira', skipWaitingForReady: true }));
    }
  }

  /** Connects (waiting up to `timeoutMs` for Redis) and returns the producer. */
  static async connect(table: Map<JobKind, Processor<any, any>>, opts: BullOptions, timeoutMs = 5000): Promise<BullJobQueue> {
    const redis = new Redis(opts.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, connectTimeout: timeoutMs });
    redis.on('error', () => {}); // surfaced per command as QueueUnavailable; no unhandled 'error' events
    await redis.connect().catch((err: Error) => {
      redis.disconnect();
      throw new QueueUnavailable(`cannot reach Redis at ${redactUrl(opts.redisUrl)}: ${err.message}`);
    });
    return new BullJobQueue(table, opts, redis);
  }

  private queue(kind: JobKind): Queue {
    if (this.redis.status !== 'ready') throw new QueueUnavailable(`Redis is ${this.redis.status}`);
    const q = this.queues.get(kind);
    if (!q) throw new Error(`no queue for job kind ${kind}`);
    return q;
  }

  private jobOptions(kind: JobKind, jobId: string) {
    const c = this.table.get(kind)!.queue;
    return {
      jobId,
      attempts: c.attempts,
      backoff: { type: 'exponential', delay: c.backoffMs },
      removeOnComplete: { count: c.keepCompleted },
      removeOnFail: { count: c.keepFailed },
    };
  }

  async enqueue(kind: JobKind, payload: unknown, opts: EnqueueOptions): Promise<void> {
    await unavailableOnFailure(this.queue(kind).add(kind, payload, this.jobOptions(kind, opts.jobId)));
  }

  async enqueueMany(kind: JobKind, jobs: { payload: unknown; jobId: string }[], opts: EnqueueManyOptions = {}): Promise<void> {
    if (jobs.length === 0) return;
    if (opts.replaceFinished) {
      const q = this.queue(kind);
      for (const j of jobs) {
        const old = await q.getJob(j.jobId);
        if (old && ((await old.isCompleted()) || (await old.isFailed()))) await old.remove();
      }
    }
    await unavailableOnFailure(this.queue(kind).addBulk(jobs.map((j) => ({ name: kind, data: j.payload, opts: this.jobOptions(kind, j.jobId) }))));
  }

  /** Removes a job that has not started. A running job is cancelled through its record (see jobs/records). */
  async cancel(jobId: string): Promise<boolean> {
    for (const q of this.queues.values()) {
      const job = await q.getJob(jobId);
      if (job && (await job.isWaiting() || await job.isDelayed())) {
        await job.remove();
        return true;
      }
    }
    return false;
  }

  async state(kind: JobKind, jobId: string): Promise<QueuedJobState> {
    const s = await unavailableOnFailure(this.queue(kind).getJobState(jobId));
    if (s === 'active') return 'active';
    return s === 'waiting' || s === 'delayed' || s === 'prioritized' || s === 'waiting-children' ? 'waiting' : 'unknown';
  }

  async depths(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [kind, q] of this.queues) out[kind] = await q.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized');
    return out;
  }

  async ping(): Promise<boolean> {
    return this.redis.ping().then(() => true, () => false);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }
}

/** After a worker close's deadline, how long the tries told to stop get before the connections are cut. */
export const CLOSE_GRACE_MS = 2000;

/** Whether `p` settles (either way) within `ms`. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  return Promise.race([p.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

export interface WorkerHandle {
  /**
   * Stops taking jobs and waits for active ones up to `deadlineMs`, then aborts their signals and
   * waits CLOSE_GRACE_MS more at most; unfinished ones return to the queue.
   */
  close(deadlineMs?: number): Promise<void>;
}

/** Consumer side: one BullMQ worker per job kind, each calling that kind's single processor. */
export function startBullWorkers<C>(ctx: C, table: Map<JobKind, Processor<C, any>>, opts: BullOptions & { log: JobRun['log'] }): WorkerHandle {
  const workers: Worker[] = [];
  const connections: Redis[] = [];
  let stopping = false;
  // A context with the database (ProcessorDeps) gets its job records kept (jobs/records.ts).
  const db = dbOf(ctx);
  const records = db ? { db, stopping: () => stopping } : undefined;
  for (const [kind, proc] of table) {
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    connections.push(connection);
    const worker = new Worker(
      queueName(kind),
      async (job: Job, _token?: string, signal?: AbortSignal) => {
        const run: JobRun = {
          id: job.id!,
          attempt: job.attemptsMade + 1,
          signal: signal ?? new AbortController().signal,
          progress: async (p) => job.updateProgress(p),
          log: withFields(opts.log, { jobId: job.id, kind, attempt: job.attemptsMade + 1 }),
        };
        const outcome = await runRecorded(proc, ctx, job.data, run, records);
        if (outcome.status === 'completed') return outcome.result;
        // A try ended by this worker's shutdown is not a failure of the job: it is taken again.
        const shutDown = stopping && run.signal.aborted;
        if (outcome.status === 'failed' && !shutDown) {
          if (STOPPED_ON_RECORD.has(outcome.code)) run.log.info({ code: outcome.code }, outcome.error.message);
          else run.log.warn({ code: outcome.code, err: outcome.error.message }, 'job failed');
          throw new UnrecoverableError(`${outcome.code}: ${outcome.error.message}`);
        }
        run.log.warn({ err: outcome.error.message }, 'job failed, will retry');
        throw outcome.error;
      },
      {
        connection,
        prefix: opts.prefix ?? 'mira',
        concurrency: proc.queue.concurrency,
        // A worker that dies mid-job: its lock expires and another worker takes the job again.
        lockDuration: opts.lockMs ?? 30_000,
        stalledInterval: Math.round((opts.lockMs ?? 30_000) / 2),
        maxStalledCount: 3,
      },
    );
    worker.on('error', (err) => opts.log.warn({ err: err.message, kind }, 'job worker error'));
    workers.push(worker);
  }
  return {
    async close(deadlineMs = 30_000) {
      stopping = true;
      // The deadline is kept here: BullMQ's close(true) after a close() only returns that close's
      // promise, which waits for the active jobs however long they take.
      const graceful = Promise.all(workers.map((w) => w.close()));
      if (!(await settlesWithin(graceful, deadlineMs))) {
        // End the tries: each goes back to queued on its record (records.ts), and its queue entry
        // is taken again once its lock expires (stalled recovery).
        for (const w of workers) w.cancelAllJobs('the worker is shutting down');
        if (!(await settlesWithin(graceful, CLOSE_GRACE_MS))) {
          opts.log.warn({ deadlineMs, graceMs: CLOSE_GRACE_MS }, 'job workers did not stop after their tries were cancelled; their connections are cut');
        }
      }
      // Connections we passed in are ours to close, not BullMQ's.
      for (const c of connections) c.disconnect();
    },
  };
}

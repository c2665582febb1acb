import type { Db } from '../db/client.ts';
import { getJob, updateJob, type Job } from '../db/queries/jobs.ts';
import { execute, type Outcome } from './execute.ts';
import type { JobKind, JobQueue, JobRun, Processor, Progress } from './types.ts';

/** How often a running try touches its record (heartbeat) and reads it for a cancel, and the most often it writes progress. */
export const RECORD_POLL_MS = 1000;

/** The `jobs` row of a try: kept true by the runners (BullMQ and in-process) for every kind but ingest. */
export interface RecordOptions {
  db: Db;
  /** True while the runner shuts down: an aborted try goes back to queued (it resumes), not failed. */
  stopping(): boolean;
  pollMs?: number;
}

/** Outcome codes of a try that its record stopped (cancelled, or not runnable): not failures. */
export const STOPPED_ON_RECORD: ReadonlySet<string> = new Set(['cancelled', 'not_runnable']);

/** Ingest jobs have no row: their state is the image's (see api/routes/jobs/ingest-job.ts). */
const untracked: readonly JobKind[] = ['ingest'];

/** The database of a processor context that has one (ProcessorDeps); test contexts may have none. */
export function dbOf(ctx: unknown): Db | undefined {
  return typeof ctx === 'object' && ctx !== null && 'db' in ctx ? (ctx as { db: Db }).db : undefined;
}

/**
 * Runs one try of a job through `execute` with its record kept true: running (with startedAt and
 * attempts) when the try starts, progress at most once per `pollMs` with rate and ETA, then
 * completed with the result, failed with the error, or queued again for a retry. A record found
 * cancelled (or finished, or lost) skips the try; a record cancelled while the try runs aborts
 * `run.signal` (the cancel may come from another process: the record is polled). A cancelled job
 * is never retried.
 */
export async function runRecorded<C>(proc: Processor<C, any>, ctx: C, payload: unknown, run: JobRun, opts: RecordOptions | undefined): Promise<Outcome> {
  if (!opts || untracked.includes(proc.kind)) return execute(proc, ctx, payload, run);
  const { db } = opts;
  const pollMs = opts.pollMs ?? RECORD_POLL_MS;
  const started = await updateJob(db, run.id, { state: 'running', error: null }, { from: ['queued', 'running'] });
  if (!started) {
    const row = await getJob(db, run.id);
    if (row) return { status: 'failed', code: 'not_runnable', error: new Error(`job ${run.id} is ${row.state}: not run`) };
    run.log.warn({}, 'job has no record: it runs untracked');
    return execute(proc, ctx, payload, run);
  }

  const abort = new AbortController();
  let cancelled = false;
  const onCancel = () => {
    cancelled = true;
    abort.abort(new Error('cancelled'));
  };
  const forward = () => abort.abort(run.signal.reason);
  if (run.signal.aborted) forward();
  else run.signal.addEventListener('abort', forward, { once: true });
  // The heartbeat: touching the record says a runner is alive (reconciliation trusts an untouched
  // running record to be lost, whatever queue it came from); a record no longer running was cancelled.
  const poll = setInterval(() => {
    updateJob(db, run.id, {}, { from: ['running'] })
      .then(async (row) => row ?? (await getJob(db, run.id)))
      .then(
        (row) => row?.state === 'cancelled' && onCancel(),
        (err: Error) => run.log.warn({ err: err.message }, 'job record not read'),
      );
  }, pollMs);
  poll.unref();

  const progress = throttledProgress(db, run, pollMs, onCancel);
  const recorded: JobRun = { ...run, signal: abort.signal, progress: progress.report };
  let outcome: Outcome;
  try {
    outcome = await execute(proc, ctx, payload, recorded);
  } finally {
    clearInterval(poll);
    run.signal.removeEventListener('abort', forward);
    await progress.flush();
  }
  if (cancelled || (await getJob(db, run.id))?.state === 'cancelled') {
    return { status: 'failed', code: 'cancelled', error: new Error('cancelled by request') };
  }
  const from = { from: ['running' as const] };
  if (outcome.status === 'completed') {
    await updateJob(db, run.id, { state: 'completed', result: outcome.result ?? null, error: null, ...progress.final() }, from);
  } else if (outcome.status === 'retry' || (run.signal.aborted && opts.stopping())) {
    // A shutdown ends the try, not the job: it goes back to queued and resumes (reconciliation finds it).
    await updateJob(db, run.id, { state: 'queued', error: `try ${run.attempt}: ${outcome.error.message}` }, from);
    if (outcome.status === 'failed') return { status: 'retry', error: outcome.error };
  } else {
    await updateJob(db, run.id, { state: 'failed', error: `${outcome.code}: ${outcome.error.message}` }, from);
  }
  return outcome;
}

/**
 * Progress of one try, written to the record at most once per `intervalMs` (the last report is
 * always written), with `rate` (items per second over this try) and `etaSeconds` when it is known.
 * A write that finds the record no longer running is a cancel.
 */
function throttledProgress(db: Db, run: JobRun, intervalMs: number, onCancel: () => void) {
  const t0 = Date.now();
  let first: number | undefined;
  let latest: Progress | undefined;
  let lastWrite = 0;
  let pending: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  const withRate = (p: Progress): Progress => {
    const seconds = (Date.now() - t0) / 1000;
    const rate = seconds > 0 ? (p.done - (first ?? p.done)) / seconds : 0;
    const out: Progress = { ...p, rate: Math.round(rate * 100) / 100 };
    if (rate > 0 && p.total >= p.done) out.etaSeconds = Math.ceil((p.total - p.done) / rate);
    return out;
  };
  const write = () => {
    pending = undefined;
    if (!latest) return writing;
    const p = withRate(latest);
    lastWrite = Date.now();
    writing = writing
      .then(() => updateJob(db, run.id, { progress: p }, { from: ['running'] }))
      .then(
        (row) => void (row ? undefined : onCancel()),
        (err: Error) => run.log.warn({ err: err.message }, 'job progress not recorded'),
      );
    return writing;
  };
  return {
    async report(p: Progress): Promise<void> {
      first ??= p.done;
      latest = p;
      await run.progress(p);
      if (Date.now() - lastWrite >= intervalMs) await write();
      else pending ??= setTimeout(write, intervalMs - (Date.now() - lastWrite));
    },
    async flush(): Promise<void> {
      if (pending) {
        clearTimeout(pending);
        await write();
      }
      await writing;
    },
    final: () => (latest ? { progress: withRate(latest) } : {}),
  };
}

/** Cancel of a job that has already finished: the state it finished in. */
export class JobAlreadyFinished extends Error {
  constructor(readonly job: Job) {
    super(`Job ${job.id} has already finished (${job.state}).`);
  }
}

/**
 * Cancels a queued or running job (the API's cancel and `mira jobs cancel`). The record first: a
 * worker that picks the job up from now on skips it, and a running try, in this process or in
 * another, sees it within RECORD_POLL_MS and stops at its next check. Then the queue drops it if
 * it has not started. Cancelling a cancelled job returns it unchanged.
 */
export async function cancelJob(db: Db, queue: JobQueue, job: Job): Promise<Job> {
  if (job.state === 'cancelled') return job;
  if (job.state !== 'queued' && job.state !== 'running') throw new JobAlreadyFinished(job);
  const cancelled = await updateJob(db, job.id, { state: 'cancelled', error: 'cancelled by request' }, { from: ['queued', 'running'] });
  if (!cancelled) {
    const now = await getJob(db, job.id);
    if (now?.state === 'cancelled') return now;
    throw new JobAlreadyFinished(now ?? job);
  }
  await queue.cancel(job.id);
  return cancelled;
}

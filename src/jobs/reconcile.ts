import type { Db } from '../db/client.ts';
import { pendingImages } from '../db/queries/images.ts';
import { listJobs, markJobsLost, updateJob } from '../db/queries/jobs.ts';
import { ingestJobId } from '../ingest/pipeline.ts';
import type { LineLogger } from '../log.ts';
import type { JobKind, JobQueue } from './types.ts';

/**
 * Queues extraction for every pending image again. Run at startup: it finds work whose job was
 * lost (accepted before a crash, or while Redis was restarting). Job ids keep a live job single,
 * and the processor is idempotent, so queueing an image that is already queued costs nothing.
 */
export async function reconcilePendingImages(db: Db, queue: JobQueue, log: { info(o: object, m?: string): void }): Promise<number> {
  let afterId: string | undefined;
  let total = 0;
  for (;;) {
    const page = await pendingImages(db, { limit: 500, ...(afterId ? { afterId } : {}) });
    if (page.length === 0) break;
    await queue.enqueueMany(
      'ingest',
      page.map((img) => ({ payload: { collectionId: img.collectionId, imageId: img.id }, jobId: ingestJobId(img.collectionId, img.sha256) })),
      { replaceFinished: true },
    );
    total += page.length;
    afterId = page[page.length - 1]!.id;
  }
  if (total > 0) log.info({ pending: total }, 'queued pending images again');
  return total;
}

/**
 * How long an unfinished record must be untouched before a service worker trusts the queue's
 * "unknown". A running try touches its record every second (jobs/records.ts), so a running record
 * untouched for a minute has no live runner. A queued one is written just before it is queued, and
 * may wait long in its queue; it waits longer here, so that another deployment (or test) using the
 * same database under another queue prefix does not take its jobs.
 */
export const RECONCILE_GRACE = { runningMs: 60_000, queuedMs: 10 * 60_000 } as const;
export type ReconcileGrace = { runningMs: number; queuedMs: number };

/** Kinds whose job picks up where a lost try stopped: queued again. The others are marked lost. */
const RESUMABLE: readonly JobKind[] = ['extract', 'reextract'];

export interface RecordReconciliation {
  requeued: string[];
  lost: string[];
}

/**
 * Compares the unfinished job records with the queue, which may have lost jobs (Redis restarted
 * without its data, an embedded process stopped). A record the queue does not know and that no
 * one has touched for its grace (RECONCILE_GRACE) is queued again when its kind resumes, or marked
 * lost with the reason.
 */
export async function reconcileJobRecords(db: Db, queue: JobQueue, log: LineLogger, grace: ReconcileGrace): Promise<RecordReconciliation> {
  const out: RecordReconciliation = { requeued: [], lost: [] };
  for (const state of ['queued', 'running'] as const) {
    const before = Date.now() - (state === 'running' ? grace.runningMs : grace.queuedMs);
    let cursor: string | undefined;
    do {
      const page = await listJobs(db, { state, limit: 200, ...(cursor ? { cursor } : {}) });
      cursor = page.nextCursor ?? undefined;
      for (const job of page.items) {
        if (job.kind === 'ingest' || job.updatedAt.getTime() > before) continue;
        if ((await queue.state(job.kind, job.id)) !== 'unknown') continue;
        if (!RESUMABLE.includes(job.kind)) {
          out.lost.push(...(await markJobsLost(db, { ids: [job.id], reason: `the queue lost this ${job.kind} job (Redis restarted or the process stopped) while it was ${state}; submit it again` })));
          continue;
        }
        // Back to queued first (a record left running would skip nothing, but reads wrong meanwhile).
        const requeued = await updateJob(db, job.id, { state: 'queued', error: `queued again: the queue had lost it while it was ${state}` }, { from: [state] });
        if (!requeued) continue;
        await queue.enqueueMany(job.kind, [{ payload: job.payload, jobId: job.id }], { replaceFinished: true });
        out.requeued.push(job.id);
      }
    } while (cursor);
  }
  if (out.requeued.length || out.lost.length) log.warn({ requeued: out.requeued, lost: out.lost }, 'job records reconciled with the queue');
  return out;
}

/** Everything reconciliation does, at startup and then periodically: pending images, then job records. */
export async function reconcile(db: Db, queue: JobQueue, log: LineLogger, grace: ReconcileGrace): Promise<void> {
  await reconcilePendingImages(db, queue, log);
  await reconcileJobRecords(db, queue, log, grace);
}

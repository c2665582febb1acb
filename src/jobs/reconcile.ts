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
 * "unknown": a job is recorded just before it is queued, and a running try writes its progress
 * (or at least its start) well within this.
 */
export const RECONCILE_GRACE_MS = 30_000;

/** Kinds whose job picks up where a lost try stopped: queued again. The others are marked lost. */
const RESUMABLE: readonly JobKind[] = ['extract', 'reextract'];

export interface RecordReconciliation {
  requeued: string[];
  lost: string[];
}

/**
 * Compares the unfinished job records with the queue, which may have lost jobs (Redis restarted
 * without its data, an embedded process stopped). A record the queue does not know and that no
 * one has touched for `graceMs` (a job being submitted right now is written before it is queued)
 * is queued again when its kind resumes, or marked lost with the reason.
 */
export async function reconcileJobRecords(db: Db, queue: JobQueue, log: LineLogger, opts: { graceMs: number }): Promise<RecordReconciliation> {
  const out: RecordReconciliation = { requeued: [], lost: [] };
  const before = Date.now() - opts.graceMs;
  for (const state of ['queued', 'running'] as const) {
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
export async function reconcile(db: Db, queue: JobQueue, log: LineLogger, opts: { graceMs: number }): Promise<void> {
  await reconcilePendingImages(db, queue, log);
  await reconcileJobRecords(db, queue, log, opts);
}

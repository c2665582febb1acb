import type { Db } from '../db/client.ts';
import { pendingImages } from '../db/queries/images.ts';
import { ingestJobId } from '../ingest/pipeline.ts';
import type { JobQueue } from './types.ts';

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

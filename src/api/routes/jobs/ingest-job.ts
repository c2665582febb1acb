import type { Context } from 'hono';
import { getImageBySha256, type Image } from '../../../db/queries/images.ts';
import type { QueuedJobState } from '../../../jobs/types.ts';
import { ApiError } from '../../errors.ts';
import { canAccess } from '../../middleware/auth.ts';
import { iso } from '../../schemas.ts';
import type { ApiEnv } from '../../types.ts';
import type { Job } from './schema.ts';

/**
 * An ingest job as the API shows it. Ingest jobs have no row in `jobs`: BullMQ trims its own
 * history, so the durable image row is what says how the job went. Pending reads as running while
 * the queue holds the job active, else queued (waiting, retrying, or about to be queued again by
 * reconciliation). A deleted image, or a collection this key cannot see, is 404.
 */
export async function visibleIngestJob(c: Context<ApiEnv>, id: string, ref: { collectionId: string; sha256: string }): Promise<Job> {
  const { db, queue } = c.var.ctx;
  const image = canAccess(c.var.principal, ref.collectionId) ? await getImageBySha256(db, ref.collectionId, ref.sha256) : undefined;
  if (!image) throw new ApiError('not_found', `No job ${id}.`);
  // The queue only refines pending into running; with Redis down the row still answers.
  const queued = image.status === 'pending' ? await queue.state('ingest', id).catch((): QueuedJobState => 'unknown') : 'unknown';
  return ingestJob(id, image, queued);
}

function ingestJob(id: string, image: Image, queued: QueuedJobState): Job {
  const finished = image.status !== 'pending';
  return {
    id,
    kind: 'ingest',
    state: image.status === 'ready' ? 'completed' : image.status === 'failed' ? 'failed' : queued === 'active' ? 'running' : 'queued',
    collectionId: image.collectionId,
    progress: { done: finished ? 1 : 0, total: 1 },
    counts: {},
    error: image.status === 'failed' ? (image.error ?? 'failed') : null,
    // Attempts live in BullMQ's history, which is trimmed: the row does not know them.
    attempts: 0,
    result: { imageId: image.id, status: image.status },
    createdAt: iso(image.createdAt),
    startedAt: null,
    finishedAt: finished ? iso(image.updatedAt) : null,
    updatedAt: iso(image.updatedAt),
  };
}

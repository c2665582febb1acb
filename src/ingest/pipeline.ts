import type { Db } from '../db/client.ts';
import type { Collection } from '../db/queries/collections.ts';
import { getImageBySha256, insertImage, type ImageStatus } from '../db/queries/images.ts';
import type { JobQueue } from '../jobs/types.ts';
import type { BlobStore } from '../storage/blob.ts';
import { holdingBlob } from '../storage/purge.ts';
import { inspectImage, sha256Hex } from './inspect.ts';
import type { IngestLimits } from './limits.ts';
import { readSource, type IngestSource, type SourceDeps } from './sources.ts';

export interface IngestDeps {
  db: Db;
  blobs: BlobStore;
  queue: JobQueue;
  limits: IngestLimits;
  sourceDeps?: SourceDeps;
}

export interface IngestResult {
  imageId: string;
  sha256: string;
  /** False when the collection already held these bytes (the existing image is returned). */
  created: boolean;
  status: ImageStatus;
  /** The queued job, when there is work left to do. */
  jobId?: string;
}

/** BullMQ refuses ':' in custom ids, so the collection:sha256 id is written with '_'. */
export const ingestJobId = (collectionId: string, sha256: string) => `ingest_${collectionId}_${sha256}`;

const INGEST_JOB_ID = /^ingest_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([0-9a-f]{64})$/;

/** The inverse of `ingestJobId`; undefined for any other id. */
export function parseIngestJobId(id: string): { collectionId: string; sha256: string } | undefined {
  const m = INGEST_JOB_ID.exec(id);
  return m ? { collectionId: m[1]!, sha256: m[2]! } : undefined;
}

/**
 * Accepts one image: read and validate it (bad input is refused here and leaves nothing behind),
 * store the original and the thumbnail durably, record the image (deduplicated on
 * collection + sha256) and queue the extraction. Returns only once all of that is durable.
 * Bytes the collection already holds, extracted or failed, return the existing image before any
 * decoding: ingesting a folder again costs a read and a hash per file.
 */
export async function ingestImage(deps: IngestDeps, collection: Pick<Collection, 'id'>, src: IngestSource): Promise<IngestResult> {
  const read = await readSource(src, deps.limits, deps.sourceDeps);
  const known = await getImageBySha256(deps.db, collection.id, sha256Hex(read.bytes));
  if (known && known.status !== 'pending') return { imageId: known.id, sha256: known.sha256, created: false, status: known.status };
  const info = await inspectImage(read.bytes, deps.limits);
  const storeBlobs = async () => {
    await deps.blobs.put(read.bytes, 'original');
    await deps.blobs.put(info.thumbnail, 'thumbnail', info.sha256);
  };
  await storeBlobs(); // the durable writes, outside any transaction
  // From here until the row is committed no purge of these bytes (another collection deleting its
  // copy) can run. One may have run since the writes: then they are stored again.
  const { image, created } = await holdingBlob(deps.db, info.sha256, async (tx) => {
    const kept = await Promise.all([deps.blobs.has(info.sha256, 'original'), deps.blobs.has(info.sha256, 'thumbnail')]);
    if (!kept.every(Boolean)) await storeBlobs();
    return insertImage(tx, {
      collectionId: collection.id,
      sha256: info.sha256,
      source: read.source,
      mime: info.mime,
      width: info.width,
      height: info.height,
      bytes: info.bytes,
      ...(read.metadata ? { metadata: read.metadata } : {}),
    });
  });
  if (image.status !== 'pending') return { imageId: image.id, sha256: info.sha256, created, status: image.status };
  // Queued on every call while pending: a job lost before it was queued (a crash, Redis down) is
  // queued again by the next ingest of the same bytes; the id keeps it to one live job.
  const jobId = ingestJobId(collection.id, info.sha256);
  await deps.queue.enqueue('ingest', { collectionId: collection.id, imageId: image.id }, { jobId });
  return { imageId: image.id, sha256: info.sha256, created, status: image.status, jobId };
}

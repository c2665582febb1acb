import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { NotFound } from '../db/errors.ts';
import { insertEmbeddings, lockChanges } from '../db/queries/embeddings.ts';
import { imageKeys } from '../db/queries/images.ts';
import { getJob } from '../db/queries/jobs.ts';
import { getModel } from '../db/queries/models.ts';
import { collections } from '../db/schema/index.ts';
import type { IngestProcessorDeps } from '../jobs/processors/ingest.ts';
import { PermanentJobError, type JobRun } from '../jobs/types.ts';
import { claimPending, imagesLackingVersion, releasePending, switchVersion, versionCounts, VersionError } from './versions.ts';

export type ReextractDeps = Pick<IngestProcessorDeps, 'db' | 'blobs' | 'features' | 'runtime' | 'writer'>;

/** Tries of one re-extraction job (its queue's attempts). */
export const REEXTRACT_ATTEMPTS = 5;
/** Images per vision call and per write. */
const BATCH = 16;
/** Passes over the images an ingest may still leave without a shadow row before the switch gives up (the job is retried). */
const MAX_ROUNDS = 5;

export interface ReextractResult {
  switched: boolean;
  from?: string;
  to: string;
  images?: number;
  labels?: number;
  /** Images embedded by this try (a resumed try skips those with a shadow row). */
  embedded?: number;
  skipped?: string;
}

/**
 * Re-embeds a collection's images with `modelId` into a shadow version while search keeps using
 * the active one, then switches in one checked transaction. A cancel, a crash or a failure before
 * the switch leaves the active version as it was; the shadow rows stay, and the next try embeds
 * only the images that lack one.
 */
export async function reextract(deps: ReextractDeps, p: { collectionId: string; modelId: string }, run: JobRun): Promise<ReextractResult> {
  const model = await getModel(deps.db, p.modelId);
  if (!model) throw new PermanentJobError(`no model ${p.modelId} is registered`, 'unknown_model');
  const claimed = await claimPending(deps.db, { collectionId: p.collectionId, modelId: p.modelId, jobId: run.id }).catch(permanent);
  if (!claimed) return { switched: false, to: p.modelId, skipped: `${p.modelId} is already the active version` };
  try {
    const runtime = await deps.runtime(p.modelId);
    // A reranker that is the embedder moves with it at the switch: its token features are made here, for free.
    const keepTokens = claimed.reranker === claimed.embedder && !!(model.manifest as { graphs?: { itm?: unknown } }).graphs?.itm;
    let embedded = 0;
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const counts = await versionCounts(deps.db, p.collectionId, p.modelId);
      const total = counts.images;
      let done = total - counts.missing;
      await run.progress({ done, total, embedded, round });
      let afterId: string | undefined;
      for (;;) {
        await stopIfCancelled(deps.db, run);
        const batch = await imagesLackingVersion(deps.db, { collectionId: p.collectionId, modelId: p.modelId, ...(afterId ? { afterId } : {}), limit: BATCH });
        if (batch.length === 0) break;
        afterId = batch.at(-1)!.id;
        const read = await Promise.all(batch.map(async (b) => ({ ...b, bytes: await deps.blobs.get(b.sha256, 'original') })));
        const present = read.filter((r): r is typeof r & { bytes: Buffer } => !!r.bytes);
        if (present.length < read.length) {
          // An image deleted since the batch was read has had its blobs purged: nothing to embed.
          // A live image without its original is data loss: the new version cannot be complete.
          const live = await imageKeys(deps.db, read.filter((r) => !r.bytes).map((r) => r.id));
          const lost = [...live.keys()][0];
          if (lost) throw new PermanentJobError(`the original of image ${lost} is not in the blob store: the new version cannot be complete`, 'blob_missing');
        }
        if (present.length > 0) {
          const embs = await runtime.embedImages(present.map((r) => r.bytes));
          if (keepTokens) await Promise.all(embs.map((e, i) => (e.tokens ? deps.features.put(p.modelId, present[i]!.id, e.tokens) : undefined)));
          await writeShadow(deps.db, { ...p, jobId: run.id, items: present.map((r, i) => ({ imageId: r.id, vector: embs[i]!.feat })) });
          await deps.writer.written(p.collectionId, p.modelId);
        }
        embedded += present.length;
        done += batch.length;
        await run.progress({ done: Math.min(done, total), total, embedded, round });
      }
      await stopIfCancelled(deps.db, run);
      const result = await switchVersion(deps.db, { collectionId: p.collectionId, to: p.modelId, from: 'pending', jobId: run.id }).catch(permanent);
      if (result.switched) {
        run.log.info({ jobId: run.id, collectionId: p.collectionId, from: claimed.embedder, to: p.modelId, ...result.counts, embedded }, 'collection switched to the re-extracted version');
        return { switched: true, from: claimed.embedder, to: p.modelId, images: result.counts.images, labels: result.counts.labels, embedded };
      }
      run.log.info({ jobId: run.id, round, ...result.counts }, 'shadow version not complete yet (images arrived meanwhile): another pass');
    }
    throw new Error(`the ${p.modelId} version of collection ${p.collectionId} was still incomplete after ${MAX_ROUNDS} passes`);
  } catch (err) {
    // Retries keep the shadow slot (ingest keeps writing both versions); a cancel or a final failure gives it up.
    if (err instanceof PermanentJobError || run.attempt >= REEXTRACT_ATTEMPTS) await releasePending(deps.db, { collectionId: p.collectionId, jobId: run.id });
    throw err;
  }
}

/** Shadow rows, only while this job still holds the collection's shadow slot. */
async function writeShadow(db: Db, p: { collectionId: string; modelId: string; jobId: string; items: { imageId: string; vector: Float32Array }[] }): Promise<void> {
  await db.transaction(async (tx) => {
    await lockChanges(tx, p.collectionId);
    const [held] = await tx
      .select({ id: collections.id })
      .from(collections)
      .where(and(eq(collections.id, p.collectionId), eq(collections.pendingJobId, p.jobId), eq(collections.pendingEmbedder, p.modelId)));
    if (!held) throw new PermanentJobError(`collection ${p.collectionId} is no longer being re-extracted to ${p.modelId} by this job`, 'superseded');
    await insertEmbeddings(tx, { collectionId: p.collectionId, modelId: p.modelId, items: p.items });
  });
}

/** A cancel (the job record says so) ends the job; a shutdown stops this try and the job resumes later. */
async function stopIfCancelled(db: Db, run: JobRun): Promise<void> {
  if ((await getJob(db, run.id))?.state === 'cancelled') {
    throw new PermanentJobError('cancelled: the active version is unchanged, the shadow rows are kept for a later re-extraction', 'cancelled');
  }
  if (run.signal.aborted) throw new Error('stopped before the switch: the active version is unchanged; the job resumes where it stopped');
}

/** The collection's state refuses the change (gone, superseded, another job): retrying cannot help. */
function permanent(err: unknown): never {
  if (err instanceof VersionError) throw new PermanentJobError(err.message, err.code);
  if (err instanceof NotFound) throw new PermanentJobError(err.message, 'not_found');
  throw err;
}

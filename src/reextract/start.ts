import { randomUUID } from 'node:crypto';
import { and, eq, ne } from 'drizzle-orm';
import type { AppContext } from '../context.ts';
import type { Db } from '../db/client.ts';
import { NotFound } from '../db/errors.ts';
import { getCollection, type Collection } from '../db/queries/collections.ts';
import { getJob, type Job } from '../db/queries/jobs.ts';
import { getModel, setActiveModel, type Model } from '../db/queries/models.ts';
import { collections, models } from '../db/schema/index.ts';
import { submitJob } from '../jobs/submit.ts';
import { checkNoOtherReextraction, claimPending, VersionError } from './versions.ts';

export interface StartedReextraction {
  collection: Collection;
  job: Job;
  /** False when a live job was already re-extracting the collection to this model. */
  started: boolean;
}

/**
 * Starts (or finds) the job that re-extracts a collection with `modelId`. The shadow slot is
 * claimed before the job is queued, so ingest writes both versions from now on and a second call
 * finds this job; if queuing fails, the slot is given back and nothing has changed.
 */
export async function startReextraction(ctx: AppContext, collectionId: string, modelId: string): Promise<StartedReextraction> {
  const collection = await getCollection(ctx.db, { id: collectionId });
  if (!collection) throw new NotFound('collection', collectionId);
  if (!(await getModel(ctx.db, modelId))) throw new NotFound('model', modelId);
  if (collection.embedder === modelId) throw new VersionError('version_active', `collection ${collection.name} is already searched by ${modelId}`);
  if (collection.pendingEmbedder === modelId && collection.pendingJobId) {
    const job = await getJob(ctx.db, collection.pendingJobId);
    if (job && (job.state === 'queued' || job.state === 'running')) return { collection, job, started: false };
  }
  const jobId = `reextract_${randomUUID()}`;
  // Refuses while another live job holds the slot.
  const claimed = await claimPending(ctx.db, { collectionId, modelId, jobId });
  if (!claimed) throw new VersionError('version_active', `collection ${collection.name} is already searched by ${modelId}`);
  try {
    const job = await submitJob(ctx, 'reextract', { collectionId, modelId }, { collectionId, id: jobId });
    return { collection: claimed, job, started: true };
  } catch (err) {
    await ctx.db
      .update(collections)
      .set({ pendingEmbedder: collection.pendingEmbedder, pendingJobId: collection.pendingJobId })
      .where(and(eq(collections.id, collectionId), eq(collections.pendingJobId, jobId)));
    throw err;
  }
}

/** Collections searched by another version of this model's name. */
async function collectionsOnOtherVersions(db: Db, m: Model): Promise<Collection[]> {
  const rows = await db
    .select({ c: collections })
    .from(collections)
    .innerJoin(models, eq(models.id, collections.embedder))
    .where(and(eq(models.name, m.name), ne(models.id, m.id)))
    .orderBy(collections.name);
  return rows.map((r) => r.c);
}

/**
 * Makes the model the active one and re-extracts every collection searched by another version of
 * it. A collection another live job is re-extracting to a third version refuses the whole call
 * before anything changes.
 */
export async function activateModel(ctx: AppContext, modelId: string): Promise<{ model: Model; reextractions: StartedReextraction[] }> {
  const model = await getModel(ctx.db, modelId);
  if (!model) throw new NotFound('model', modelId);
  const stale = await collectionsOnOtherVersions(ctx.db, model);
  for (const c of stale) await checkNoOtherReextraction(ctx.db, c, model.id);
  const reextractions: StartedReextraction[] = [];
  for (const c of stale) reextractions.push(await startReextraction(ctx, c.id, model.id));
  return { model: model.active ? model : await setActiveModel(ctx.db, model.id), reextractions };
}

/**
 * The embedder versions of a collection: the active one (`embedder`, what search uses), the shadow a
 * re-extraction is filling (`pending_embedder`) and the one searched before the last switch
 * (`previous_embedder`, the rollback target). Every live version gets ingest's writes; switching
 * between them is one transaction that checks the target is complete.
 */
import { and, eq, isNull, sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../db/client.ts';
import { NotFound } from '../db/errors.ts';
import type { Collection } from '../db/queries/collections.ts';
import { lastChangeSeq, lockChanges } from '../db/queries/embeddings.ts';
import { getJob } from '../db/queries/jobs.ts';
import { getModel } from '../db/queries/models.ts';
import { collections, embeddings } from '../db/schema/index.ts';

export type VersionErrorCode = 'version_active' | 'version_incomplete' | 'reextraction_running' | 'no_previous_version' | 'superseded';

/** A version change the collection's state refuses; the API answers 409 with the code. */
export class VersionError extends Error {
  constructor(
    readonly code: VersionErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'VersionError';
  }
}

/** The versions ingest writes: the active one first, then the shadow and the previous one. */
export function liveVersions(c: Pick<Collection, 'embedder' | 'pendingEmbedder' | 'previousEmbedder'>): string[] {
  return [...new Set([c.embedder, c.pendingEmbedder, c.previousEmbedder].filter((m): m is string => !!m))];
}

/** Every model a collection's images can have derived data under: its live versions and its re-ranker. */
export function collectionModels(c: Pick<Collection, 'embedder' | 'pendingEmbedder' | 'previousEmbedder' | 'reranker'>): string[] {
  return [...new Set([...liveVersions(c), ...(c.reranker ? [c.reranker] : [])])];
}

export interface VersionCounts {
  /** Ready, live images: what every complete version holds a row for. */
  images: number;
  /** Live rows (HNSW labels) of the version for live images. */
  labels: number;
  /** Ready, live images without a live row of the version. */
  missing: number;
}

export async function versionCounts(db: Db, collectionId: string, modelId: string): Promise<VersionCounts> {
  const [row] = rowsOf<{ images: number; labels: number; missing: number }>(
    await db.execute(sql`
      select
        (select count(*)::int from images i where i.collection_id = ${collectionId} and i.deleted_at is null and i.status = 'ready') as images,
        (select count(*)::int from embeddings e join images i on i.id = e.image_id
          where e.collection_id = ${collectionId} and e.model_id = ${modelId} and e.deleted_seq is null and i.deleted_at is null) as labels,
        (select count(*)::int from images i where i.collection_id = ${collectionId} and i.deleted_at is null and i.status = 'ready'
          and not exists (select 1 from embeddings e where e.image_id = i.id and e.model_id = ${modelId} and e.deleted_seq is null)) as missing`),
  );
  return { images: Number(row!.images), labels: Number(row!.labels), missing: Number(row!.missing) };
}

/** Ready, live images of the collection with no live row of `modelId`, in id order after `afterId`. */
export async function imagesLackingVersion(db: Db, p: { collectionId: string; modelId: string; afterId?: string; limit: number }): Promise<{ id: string; sha256: string }[]> {
  return rowsOf<{ id: string; sha256: string }>(
    await db.execute(sql`
      select i.id, i.sha256 from images i
      where i.collection_id = ${p.collectionId} and i.deleted_at is null and i.status = 'ready'
        ${p.afterId ? sql`and i.id > ${p.afterId}` : sql``}
        and not exists (select 1 from embeddings e where e.image_id = i.id and e.model_id = ${p.modelId} and e.deleted_seq is null)
      order by i.id limit ${p.limit}`),
  );
}

/** The collection row, locked until the transaction ends: version changes serialize on it. */
async function lockCollection(tx: Db, collectionId: string): Promise<Collection> {
  const [c] = await tx.select().from(collections).where(eq(collections.id, collectionId)).for('update');
  if (!c) throw new NotFound('collection', collectionId);
  return c;
}

async function jobAlive(db: Db, jobId: string | null): Promise<boolean> {
  if (!jobId) return false;
  const job = await getJob(db, jobId);
  return job?.state === 'queued' || job?.state === 'running';
}

/**
 * Claims the collection's shadow slot for `modelId` and job `jobId` unless another live job holds
 * it. Returns undefined when `modelId` is already the active version.
 */
export async function claimPending(db: Db, p: { collectionId: string; modelId: string; jobId: string }): Promise<Collection | undefined> {
  return db.transaction(async (tx) => {
    const c = await lockCollection(tx, p.collectionId);
    if (c.embedder === p.modelId) return undefined;
    if (c.pendingJobId !== p.jobId) await checkNoOtherReextraction(tx, c);
    const [row] = await tx.update(collections).set({ pendingEmbedder: p.modelId, pendingJobId: p.jobId }).where(eq(collections.id, p.collectionId)).returning();
    return row;
  });
}

/** Gives up the shadow slot when `jobId` still holds it (cancel, failure): ingest stops writing the shadow. */
export async function releasePending(db: Db, p: { collectionId: string; jobId: string }): Promise<void> {
  await db.update(collections).set({ pendingEmbedder: null, pendingJobId: null }).where(and(eq(collections.id, p.collectionId), eq(collections.pendingJobId, p.jobId)));
}

const graphsOf = (manifest: unknown) => (manifest as { graphs?: Record<string, unknown> } | null)?.graphs ?? {};

export type SwitchResult = { switched: true; collection: Collection; counts: VersionCounts } | { switched: false; counts: VersionCounts };

/**
 * Makes `to` the active version in one transaction, only when it is complete (a live row for every
 * ready image). It holds the collection's change lock, which every embedding write takes too, so
 * no ingest falls between the check and the flip. The version that was active becomes the previous
 * one; a reranker or captioner that was the embedder follows it when the new model can re-rank or
 * caption (after an upgrade the old version's files may be gone: nothing should stay on it).
 */
export async function switchVersion(db: Db, p: { collectionId: string; to: string; from: 'pending' | 'previous'; jobId?: string }): Promise<SwitchResult> {
  return db.transaction(async (tx) => {
    await lockChanges(tx, p.collectionId);
    const c = await lockCollection(tx, p.collectionId);
    if (p.from === 'pending' && (c.pendingEmbedder !== p.to || (p.jobId && c.pendingJobId !== p.jobId))) {
      throw new VersionError('superseded', `collection ${c.name} is no longer being re-extracted to ${p.to} by this job`);
    }
    if (p.from === 'previous' && (!c.previousEmbedder || c.previousEmbedder !== p.to)) {
      throw new VersionError('no_previous_version', `collection ${c.name} has no previous version to roll back to`);
    }
    const counts = await versionCounts(tx, p.collectionId, p.to);
    if (counts.missing > 0 || counts.labels !== counts.images) return { switched: false, counts };
    const model = await getModel(tx, p.to);
    if (!model) throw new NotFound('model', p.to);
    const rerankerFollows = c.reranker === c.embedder && !!graphsOf(model.manifest).itm;
    const captionerFollows = c.captioner === c.embedder && !!graphsOf(model.manifest).decoder;
    const switchedAtSeq = await lastChangeSeq(tx, { collectionId: p.collectionId, modelId: p.to });
    const [row] = await tx
      .update(collections)
      .set({
        embedder: p.to,
        previousEmbedder: c.embedder,
        switchedAtSeq,
        dim: model.embedDim,
        ...(rerankerFollows ? { reranker: p.to } : {}),
        ...(captionerFollows ? { captioner: p.to } : {}),
        ...(p.from === 'pending' || c.pendingEmbedder === p.to ? { pendingEmbedder: null, pendingJobId: null } : {}),
      })
      .where(eq(collections.id, p.collectionId))
      .returning();
    return { switched: true, collection: row!, counts };
  });
}

/**
 * Soft-deletes a version's rows through the change stream (so replicas drop them) and forgets it
 * as the previous version. The active version, and a shadow a live job is filling, are refused.
 * The index files are the caller's to drop.
 */
export async function deleteVersion(db: Db, p: { collectionId: string; modelId: string }): Promise<{ deleted: number }> {
  return db.transaction(async (tx) => {
    await lockChanges(tx, p.collectionId);
    const c = await lockCollection(tx, p.collectionId);
    if (c.embedder === p.modelId) throw new VersionError('version_active', `${p.modelId} is the version collection ${c.name} is searched by: switch or roll back first`);
    const pending = c.pendingEmbedder === p.modelId;
    if (pending && (await jobAlive(tx, c.pendingJobId))) {
      throw new VersionError('reextraction_running', `job ${c.pendingJobId} is re-extracting collection ${c.name} to ${p.modelId}: cancel it first`, { jobId: c.pendingJobId });
    }
    const scope = and(eq(embeddings.collectionId, p.collectionId), eq(embeddings.modelId, p.modelId), isNull(embeddings.deletedSeq));
    const deleted = await tx.update(embeddings).set({ deletedSeq: sql`nextval('index_change_seq')` }).where(scope).returning({ label: embeddings.label });
    const previous = c.previousEmbedder === p.modelId;
    if (!deleted.length && !previous && !pending) throw new NotFound('version', `${p.modelId} of collection ${c.name}`);
    if (previous || pending) {
      await tx
        .update(collections)
        .set({ ...(previous ? { previousEmbedder: null } : {}), ...(pending ? { pendingEmbedder: null, pendingJobId: null } : {}) })
        .where(eq(collections.id, p.collectionId));
    }
    return { deleted: deleted.length };
  });
}

/** Makes the previous version active again (the one active now becomes the previous): one call, one transaction. */
export async function rollbackVersion(db: Db, collectionId: string): Promise<Collection> {
  const [c] = await db.select().from(collections).where(eq(collections.id, collectionId));
  if (!c) throw new NotFound('collection', collectionId);
  if (!c.previousEmbedder) throw new VersionError('no_previous_version', `collection ${c.name} has no previous version to roll back to`);
  const result = await switchVersion(db, { collectionId, to: c.previousEmbedder, from: 'previous' });
  if (!result.switched) {
    throw new VersionError(
      'version_incomplete',
      `${c.previousEmbedder} lacks rows for ${result.counts.missing} of ${result.counts.images} images of collection ${c.name}: re-extract the collection to it instead`,
      { ...result.counts },
    );
  }
  return result.collection;
}

/** Refuses (reextraction_running) when a live job is re-extracting the collection to a model other than `modelId`. */
export async function checkNoOtherReextraction(db: Db, c: Collection, modelId?: string): Promise<void> {
  if (c.pendingEmbedder && c.pendingEmbedder !== modelId && (await jobAlive(db, c.pendingJobId))) {
    throw new VersionError('reextraction_running', `collection ${c.name} is being re-extracted to ${c.pendingEmbedder} by job ${c.pendingJobId}`, { jobId: c.pendingJobId });
  }
}

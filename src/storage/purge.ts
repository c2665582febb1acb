/**
 * Removing originals and thumbnails that no live image holds any more.
 *
 * Blobs are shared: one sha256 can be an image in several collections, and an ingest stores the
 * blobs before it records the image. So a purge of a sha256 and an ingest of the same bytes take
 * one advisory lock, the purge exclusively and every ingest shared. An ingest writes the blobs,
 * takes the lock, stores them again if a purge removed them meanwhile, and holds it
 * until its image row is committed; a purge checks for live rows only once it holds the lock. A
 * blob is then removed only when no collection holds it, and an ingest never records an image
 * whose blobs are gone. The slow durable writes stay outside the transaction (PGlite runs one
 * transaction at a time). The thumbnail goes first, so a purge cut short by a crash leaves an
 * original that the next sweep finds.
 */
import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { images } from '../db/schema/index.ts';
import type { TokenFeatureStore } from '../features/store.ts';
import type { BlobStore } from './blob.ts';

/** Two-key advisory lock space for blobs (73_114 is the index change lock, src/db/queries/embeddings.ts). */
const BLOB_LOCK = 73_115;

const lockBlob = (tx: Db, sha256: string, mode: 'shared' | 'exclusive') =>
  tx.execute(
    mode === 'shared'
      ? sql`select pg_advisory_xact_lock_shared(${BLOB_LOCK}, hashtext(${sha256}))::text`
      : sql`select pg_advisory_xact_lock(${BLOB_LOCK}, hashtext(${sha256}))::text`,
  );

/**
 * Runs `fn` in a transaction that no purge of `sha256` can overlap: make sure of the blobs and
 * record the image inside it (with `tx`), and the blobs stay until that image is deleted.
 */
export function holdingBlob<T>(db: Db, sha256: string, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await lockBlob(tx, sha256, 'shared');
    return fn(tx);
  });
}

/** The ones among `shas` that some live image (of any collection) holds. */
async function held(db: Db, shas: string[]): Promise<Set<string>> {
  if (shas.length === 0) return new Set();
  const rows = await db
    .selectDistinct({ sha256: images.sha256 })
    .from(images)
    .where(and(inArray(images.sha256, shas), isNull(images.deletedAt)));
  return new Set(rows.map((r) => r.sha256));
}

/**
 * Removes the original and thumbnail of each sha256 that no live image holds. Returns how many
 * originals it removed. Safe to run at any time, alongside ingests and other purges.
 */
export async function purgeBlobs(db: Db, blobs: BlobStore, shas: Iterable<string>): Promise<number> {
  let removed = 0;
  for (const sha256 of new Set(shas)) {
    const gone = await db.transaction(async (tx) => {
      await lockBlob(tx, sha256, 'exclusive');
      if ((await held(tx, [sha256])).size > 0) return false;
      await blobs.delete(sha256, 'thumbnail');
      return blobs.delete(sha256, 'original');
    });
    if (gone) removed++;
  }
  return removed;
}

/**
 * Walks the blob store and purges every original no live image holds: what deleted collections
 * left, and what a crash left between storing blobs and recording an image, or mid-purge. With
 * `dryRun`, only counts them. It trusts `db` to be the database these blobs belong to.
 */
export async function sweepBlobs(db: Db, blobs: BlobStore, opts: { batch?: number; dryRun?: boolean } = {}): Promise<{ checked: number; removed: number }> {
  const batch = opts.batch ?? 500;
  let checked = 0;
  let removed = 0;
  let keys: string[] = [];
  const flush = async () => {
    const live = await held(db, keys);
    const orphans = keys.filter((k) => !live.has(k));
    // Checked again under the lock, one by one: an ingest may have recorded one since.
    removed += opts.dryRun ? orphans.length : await purgeBlobs(db, blobs, orphans);
    checked += keys.length;
    keys = [];
  };
  for await (const key of blobs.originals()) {
    keys.push(key);
    if (keys.length >= batch) await flush();
  }
  await flush();
  return { checked, removed };
}

/**
 * What deleted images leave behind, once their deletion has committed: their token features under
 * `modelIds` (the collection's models, reextract/versions.ts `collectionModels`), and their blobs
 * where no other live image holds them. Returns how many originals it removed.
 */
export async function forgetImages(
  deps: { db: Db; blobs: BlobStore; features: TokenFeatureStore },
  modelIds: string[],
  deleted: { id: string; sha256: string }[],
): Promise<number> {
  await Promise.all(modelIds.flatMap((m) => deleted.map((img) => deps.features.delete(m, img.id))));
  return purgeBlobs(deps.db, deps.blobs, deleted.map((img) => img.sha256));
}

/**
 * Removes the token features a collection's images have under `modelId`, once the collection no
 * longer uses that model (a deleted version). Returns how many images it went through. Derived
 * data: a re-extraction back to the model that races this recomputes what it misses.
 */
export async function forgetCollectionTokens(deps: { db: Db; features: TokenFeatureStore }, collectionId: string, modelId: string, page = 1000): Promise<number> {
  let seen = 0;
  let after: string | undefined;
  for (;;) {
    const rows = await deps.db
      .select({ id: images.id })
      .from(images)
      .where(and(eq(images.collectionId, collectionId), ...(after ? [gt(images.id, after)] : [])))
      .orderBy(asc(images.id))
      .limit(page);
    if (rows.length === 0) return seen;
    await Promise.all(rows.map((r) => deps.features.delete(modelId, r.id)));
    seen += rows.length;
    after = rows.at(-1)!.id;
  }
}

import { and, asc, count, eq, getTableColumns, inArray, isNull, sql, type SQL } from 'drizzle-orm';
import { rowsOf, type Db } from '../client.ts';
import { FOREIGN_KEY_VIOLATION, NotFound, sqlState } from '../errors.ts';
import { embeddings, images, imageStatus } from '../schema/index.ts';
import { lockChanges } from './embeddings.ts';
import { afterKeyset, checkLimit, decodeCursor, isUuid, keysetAt, toPage, type Page } from './page.ts';

const columns = getTableColumns(images);
const live = isNull(images.deletedAt);

export type Image = typeof images.$inferSelect;
export type ImageStatus = (typeof imageStatus)[number];
export type NewImage = Pick<Image, 'collectionId' | 'sha256' | 'source' | 'mime' | 'width' | 'height' | 'bytes'> & {
  metadata?: Record<string, unknown>;
};
export interface ImagePatch {
  metadata?: Record<string, unknown>;
  caption?: string | null;
  captionModel?: string | null;
  status?: ImageStatus;
  error?: string | null;
}

/**
 * The image with these bytes in the collection, inserted if there is none. The insert and the
 * dedupe are one statement (the partial unique index on live rows decides), so concurrent
 * ingests of the same bytes all get the one id.
 */
export async function insertImage(db: Db, img: NewImage): Promise<{ image: Image; created: boolean }> {
  // A retry covers a row that was deleted between our conflict and our read.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [inserted] = await db
      .insert(images)
      .values(img)
      .onConflictDoNothing({ target: [images.collectionId, images.sha256], where: sql`deleted_at is null` })
      .returning(columns)
      .catch((err: unknown) => {
        if (sqlState(err) === FOREIGN_KEY_VIOLATION) throw new NotFound('collection', img.collectionId);
        throw err;
      });
    if (inserted) return { image: inserted, created: true };
    const [existing] = await db
      .select(columns)
      .from(images)
      .where(and(eq(images.collectionId, img.collectionId), eq(images.sha256, img.sha256), live));
    if (existing) return { image: existing, created: false };
  }
  throw new Error(`image ${img.collectionId}:${img.sha256} was neither inserted nor found`);
}

export async function getImage(db: Db, id: string, opts: { collectionId?: string; includeDeleted?: boolean } = {}): Promise<Image | undefined> {
  if (!isUuid(id)) return undefined;
  const where = [eq(images.id, id)];
  if (opts.collectionId) where.push(eq(images.collectionId, opts.collectionId));
  if (!opts.includeDeleted) where.push(live);
  const [row] = await db.select(columns).from(images).where(and(...where));
  return row;
}

/** The live image with these bytes in the collection (what an ingest job id names). */
export async function getImageBySha256(db: Db, collectionId: string, sha256: string): Promise<Image | undefined> {
  if (!isUuid(collectionId)) return undefined;
  const [row] = await db
    .select(columns)
    .from(images)
    .where(and(eq(images.collectionId, collectionId), eq(images.sha256, sha256), live));
  return row;
}

export interface ImageQuery {
  collectionId: string;
  /** Images whose metadata contains this object (jsonb `@>`). */
  metadata?: Record<string, unknown>;
  status?: ImageStatus;
  cursor?: string;
  limit: number;
}

/** Live images oldest first, so a walk also sees images added while it runs. */
export async function listImages(db: Db, q: ImageQuery): Promise<Page<Image>> {
  const limit = checkLimit(q.limit);
  if (!isUuid(q.collectionId)) return { items: [], nextCursor: null };
  const where: SQL[] = [eq(images.collectionId, q.collectionId), live];
  if (q.metadata) where.push(sql`${images.metadata} @> ${JSON.stringify(q.metadata)}::jsonb`);
  if (q.status) where.push(eq(images.status, q.status));
  if (q.cursor) where.push(afterKeyset(images.createdAt, images.id, decodeCursor(q.cursor, true), 'asc'));
  const rows = await db
    .select({ ...columns, cursorAt: keysetAt(images.createdAt) })
    .from(images)
    .where(and(...where))
    .orderBy(asc(images.createdAt), asc(images.id))
    .limit(limit + 1);
  return toPage(rows, limit, ({ cursorAt: _, ...image }) => image);
}

/** Live images of the collection by id; ids that are not (deleted, elsewhere, malformed) are absent. */
export async function imagesByIds(db: Db, collectionId: string, ids: string[]): Promise<Map<string, Image>> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0 || !isUuid(collectionId)) return new Map();
  const rows = await db
    .select(columns)
    .from(images)
    .where(and(inArray(images.id, valid), eq(images.collectionId, collectionId), live));
  return new Map(rows.map((r) => [r.id, r]));
}

export async function countImagesByStatus(db: Db, collectionId: string): Promise<Partial<Record<ImageStatus, number>>> {
  if (!isUuid(collectionId)) return {};
  const rows = await db
    .select({ status: images.status, n: count() })
    .from(images)
    .where(and(eq(images.collectionId, collectionId), live))
    .groupBy(images.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Where the originals are: sha256 by image id, for live images. */
export async function imageKeys(db: Db, ids: string[]): Promise<Map<string, string>> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return new Map();
  const rows = await db
    .select({ id: images.id, sha256: images.sha256 })
    .from(images)
    .where(and(inArray(images.id, valid), live));
  return new Map(rows.map((r) => [r.id, r.sha256]));
}

export async function updateImage(db: Db, id: string, patch: ImagePatch): Promise<Image> {
  if (!isUuid(id)) throw new NotFound('image', id);
  const [row] = await db
    .update(images)
    .set({ ...patch, updatedAt: sql`now()` })
    .where(and(eq(images.id, id), live))
    .returning(columns);
  if (!row) throw new NotFound('image', id);
  return row;
}

/**
 * Soft-deletes the image and, in the same transaction, gives its live embeddings a deleted_seq
 * so the indexes learn of it. Returns false when there was no live image (deleting twice is fine).
 */
export async function deleteImage(db: Db, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  return db.transaction(async (tx) => {
    const [found] = await tx.select({ collectionId: images.collectionId }).from(images).where(and(eq(images.id, id), live));
    if (!found) return false;
    await lockChanges(tx, found.collectionId);
    const deleted = await tx
      .update(images)
      .set({ deletedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(images.id, id), live))
      .returning({ id: images.id });
    if (deleted.length === 0) return false;
    await tx
      .update(embeddings)
      .set({ deletedSeq: sql`nextval('index_change_seq')` })
      .where(and(eq(embeddings.imageId, id), isNull(embeddings.deletedSeq)));
    return true;
  });
}

/** Live pending images of every collection, in id order from `afterId` (reconciliation pages through them). */
export async function pendingImages(db: Db, p: { afterId?: string; limit: number }): Promise<{ id: string; collectionId: string; sha256: string }[]> {
  const where: SQL[] = [eq(images.status, 'pending'), live];
  if (p.afterId) where.push(sql`${images.id} > ${p.afterId}`);
  return db
    .select({ id: images.id, collectionId: images.collectionId, sha256: images.sha256 })
    .from(images)
    .where(and(...where))
    .orderBy(asc(images.id))
    .limit(checkLimit(p.limit));
}

/**
 * Marks extracted images ready in one statement, with their captions when given. Deleted images
 * are left alone. Returns the ids it updated.
 */
export async function markImagesReady(db: Db, items: { id: string; caption?: string; captionModel?: string }[]): Promise<string[]> {
  if (items.length === 0) return [];
  const list = <T>(values: T[]) => sql.join(values.map((v) => sql`${v}`), sql`, `);
  const rows = await db.execute<{ id: string }>(sql`
    update ${images} set
      status = 'ready', error = null, updated_at = now(),
      caption = coalesce(v.caption, ${images.caption}),
      caption_model = coalesce(v.caption_model, ${images.captionModel})
    from unnest(array[${list(items.map((i) => i.id))}]::uuid[], array[${list(items.map((i) => i.caption ?? null))}]::text[],
                array[${list(items.map((i) => i.captionModel ?? null))}]::text[]) as v(id, caption, caption_model)
    where ${images.id} = v.id and ${images.deletedAt} is null
    returning ${images.id} as id`);
  return rowsOf<{ id: string }>(rows).map((r) => r.id);
}

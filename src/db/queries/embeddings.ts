import { and, asc, count, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../client.ts';
import { NotFound } from '../errors.ts';
import { embeddings, images, models } from '../schema/index.ts';

/** Two-key advisory lock space for change ordering (the one-key space holds the migration lock). */
const CHANGE_LOCK = 73_114;

/**
 * Every writer that takes a number from index_change_seq for a collection holds this lock until
 * it commits. Numbers are then committed in the order they are taken, so a reader that has seen
 * number n will never later find a smaller one appear: replaying the change stream (src/index/changes.ts
 * readChanges) loses nothing.
 */
export async function lockChanges(tx: Db, collectionId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${CHANGE_LOCK}, hashtext(${collectionId}))::text`);
}

export interface NewEmbedding {
  imageId: string;
  vector: Float32Array;
}
export interface StoredLabel {
  label: number;
  created: boolean;
}

/**
 * Stores one vector per (image, model), idempotently: an image that already has a live row for the
 * model keeps it and its label. Images that are deleted or not in the collection get undefined, so
 * a worker that finishes after a delete adds nothing the index would have to forget.
 */
export async function insertEmbeddings(
  db: Db,
  p: { collectionId: string; modelId: string; items: NewEmbedding[] },
): Promise<(StoredLabel | undefined)[]> {
  if (p.items.length === 0) return [];
  const [model] = await db.select({ dim: models.embedDim }).from(models).where(eq(models.id, p.modelId));
  if (!model) throw new NotFound('model', p.modelId);
  for (const it of p.items) {
    if (it.vector.length !== model.dim) throw new RangeError(`image ${it.imageId}: a ${p.modelId} vector has ${model.dim} values, not ${it.vector.length}`);
  }
  const ids = [...new Set(p.items.map((it) => it.imageId))];
  const labels = await db.transaction(async (tx) => {
    await lockChanges(tx, p.collectionId);
    const liveImages = await tx
      .select({ id: images.id })
      .from(images)
      .where(and(inArray(images.id, ids), eq(images.collectionId, p.collectionId), isNull(images.deletedAt)));
    const alive = new Set(liveImages.map((r) => r.id));
    const firstOf = new Map(p.items.filter((it) => alive.has(it.imageId)).map((it) => [it.imageId, it] as const));
    const rows = [...firstOf.values()].map((it) => ({ imageId: it.imageId, collectionId: p.collectionId, modelId: p.modelId, vector: it.vector }));
    const created = rows.length
      ? await tx
          .insert(embeddings)
          .values(rows)
          .onConflictDoNothing({ target: [embeddings.imageId, embeddings.modelId], where: sql`deleted_seq is null` })
          .returning({ label: embeddings.label, imageId: embeddings.imageId })
      : [];
    const out = new Map(created.map((r) => [r.imageId, { label: r.label, created: true }]));
    const existing = [...alive].filter((id) => !out.has(id));
    if (existing.length) {
      for (const [imageId, label] of await labelsForImages(tx, { modelId: p.modelId, imageIds: existing })) out.set(imageId, { label, created: false });
    }
    return out;
  });
  const seen = new Set<string>();
  return p.items.map((it) => {
    const stored = labels.get(it.imageId);
    if (!stored) return undefined;
    const first = !seen.has(it.imageId);
    seen.add(it.imageId);
    return { label: stored.label, created: stored.created && first };
  });
}

export async function insertEmbedding(db: Db, p: { collectionId: string; modelId: string } & NewEmbedding): Promise<StoredLabel | undefined> {
  const [stored] = await insertEmbeddings(db, { collectionId: p.collectionId, modelId: p.modelId, items: [p] });
  return stored;
}

/** Vectors of live rows by label. */
export async function vectorsForLabels(db: Db, labels: number[]): Promise<Map<number, Float32Array>> {
  if (labels.length === 0) return new Map();
  const rows = await db
    .select({ label: embeddings.label, vector: embeddings.vector })
    .from(embeddings)
    .where(and(inArray(embeddings.label, labels), isNull(embeddings.deletedSeq)));
  return new Map(rows.map((r) => [r.label, r.vector]));
}

/** Live labels of the images for one model. */
export async function labelsForImages(db: Db, p: { modelId: string; imageIds: string[] }): Promise<Map<string, number>> {
  if (p.imageIds.length === 0) return new Map();
  const rows = await db
    .select({ imageId: embeddings.imageId, label: embeddings.label })
    .from(embeddings)
    .where(and(inArray(embeddings.imageId, p.imageIds), eq(embeddings.modelId, p.modelId), isNull(embeddings.deletedSeq)));
  return new Map(rows.map((r) => [r.imageId, r.label]));
}

/** Image ids of live labels: a label the index still holds but Postgres has deleted is absent. */
export async function imagesForLabels(db: Db, labels: number[]): Promise<Map<number, string>> {
  if (labels.length === 0) return new Map();
  const rows = await db
    .select({ label: embeddings.label, imageId: embeddings.imageId })
    .from(embeddings)
    .where(and(inArray(embeddings.label, labels), isNull(embeddings.deletedSeq)));
  return new Map(rows.map((r) => [r.label, r.imageId]));
}

export async function countLiveEmbeddings(db: Db, p: { collectionId: string; modelId: string }): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(embeddings)
    .where(and(eq(embeddings.collectionId, p.collectionId), eq(embeddings.modelId, p.modelId), isNull(embeddings.deletedSeq)));
  return row?.n ?? 0;
}

/** The highest change number applied to (collection, model) so far; 0 when none. */
export async function lastChangeSeq(db: Db, p: { collectionId: string; modelId: string }): Promise<number> {
  const [row] = await db
    .select({ seq: sql<number>`coalesce(greatest(max(${embeddings.label}), max(${embeddings.deletedSeq})), 0)`.mapWith(Number) })
    .from(embeddings)
    .where(and(eq(embeddings.collectionId, p.collectionId), eq(embeddings.modelId, p.modelId)));
  return row?.seq ?? 0;
}

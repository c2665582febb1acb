import { asc, eq, getTableColumns } from 'drizzle-orm';
import type { Db } from '../client.ts';
import { Conflict, FOREIGN_KEY_VIOLATION, NotFound, sqlState, UNIQUE_VIOLATION } from '../errors.ts';
import { collections, images } from '../schema/index.ts';
import { getModel } from './models.ts';
import { isUuid } from './page.ts';

const columns = getTableColumns(collections);

export type Collection = typeof collections.$inferSelect;
/** `dim` is not given: it is the embedder's. */
export type NewCollection = Omit<typeof collections.$inferInsert, 'id' | 'dim' | 'createdAt'>;

export async function createCollection(db: Db, c: NewCollection): Promise<Collection> {
  const embedder = await getModel(db, c.embedder);
  if (!embedder) throw new NotFound('model', c.embedder);
  try {
    const [row] = await db
      .insert(collections)
      .values({ ...c, dim: embedder.embedDim })
      .returning(columns);
    return row!;
  } catch (err) {
    const state = sqlState(err);
    if (state === UNIQUE_VIOLATION) throw new Conflict('collection', `a collection named ${c.name} exists`);
    if (state === FOREIGN_KEY_VIOLATION) throw new NotFound('model', [c.embedder, c.reranker, c.captioner].filter(Boolean).join(' or '));
    throw err;
  }
}

export async function getCollection(db: Db, key: { id: string } | { name: string }): Promise<Collection | undefined> {
  if ('id' in key && !isUuid(key.id)) return undefined;
  const where = 'id' in key ? eq(collections.id, key.id) : eq(collections.name, key.name);
  const [row] = await db.select(columns).from(collections).where(where);
  return row;
}

export function listCollections(db: Db): Promise<Collection[]> {
  return db.select(columns).from(collections).orderBy(asc(collections.name));
}

/**
 * Deletes the collection with its images and embeddings, in one transaction. Returns the deleted
 * row and the images it held, whose blobs and token features are the caller's to purge
 * (src/storage/purge.ts), or undefined when there was no such collection. Its index files are the
 * index layer's to drop.
 */
export async function deleteCollection(db: Db, id: string): Promise<{ collection: Collection; images: { id: string; sha256: string }[] } | undefined> {
  if (!isUuid(id)) return undefined;
  return db.transaction(async (tx) => {
    // Deleted before the collection (the cascade would do it, but without telling which).
    const held = await tx.delete(images).where(eq(images.collectionId, id)).returning({ id: images.id, sha256: images.sha256 });
    const [collection] = await tx.delete(collections).where(eq(collections.id, id)).returning(columns);
    return collection ? { collection, images: held } : undefined;
  });
}

import { asc, eq, getTableColumns } from 'drizzle-orm';
import type { Db } from '../client.ts';
import { Conflict, FOREIGN_KEY_VIOLATION, NotFound, sqlState, UNIQUE_VIOLATION } from '../errors.ts';
import { collections } from '../schema/index.ts';
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

/** Deletes the collection with its images and embeddings (cascade); its index files are the index layer's to drop. */
export async function deleteCollection(db: Db, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const rows = await db.delete(collections).where(eq(collections.id, id)).returning({ id: collections.id });
  return rows.length > 0;
}

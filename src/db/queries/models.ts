import { asc, eq, getTableColumns, sql } from 'drizzle-orm';
import type { Db } from '../client.ts';
import { Conflict, NotFound } from '../errors.ts';
import { models } from '../schema/index.ts';

const { id, name, version, family, path, checksum, embedDim, active, manifest, registeredAt } = getTableColumns(models);
const columns = { id, name, version, family, path, checksum, embedDim, active, manifest, registeredAt };

export type Model = typeof models.$inferSelect;
export type NewModel = Omit<typeof models.$inferInsert, 'id' | 'active' | 'registeredAt'>;

export const modelId = (name: string, version: string): string => `${name}@${version}`;

/**
 * Registers `name@version`. The same checksum again is a no-op; a different checksum under a
 * registered version is refused, since its rows and indexes were made by the old bytes.
 */
export async function registerModel(db: Db, model: NewModel): Promise<{ model: Model; created: boolean }> {
  const key = modelId(model.name, model.version);
  const [inserted] = await db
    .insert(models)
    .values({ ...model, id: key })
    .onConflictDoNothing({ target: models.id })
    .returning(columns);
  if (inserted) return { model: inserted, created: true };
  const existing = await getModel(db, key);
  if (!existing) throw new NotFound('model', key);
  if (existing.checksum !== model.checksum) {
    throw new Conflict('model', `model ${key} is registered with checksum ${existing.checksum}, not ${model.checksum}: give the changed bundle a new version`);
  }
  return { model: existing, created: false };
}

/** Points a registered model at another folder holding the same bytes (the old one is gone). */
export async function setModelPath(db: Db, id: string, path: string): Promise<Model> {
  const [row] = await db.update(models).set({ path }).where(eq(models.id, id)).returning(columns);
  if (!row) throw new NotFound('model', id);
  return row;
}

export async function getModel(db: Db, id: string): Promise<Model | undefined> {
  const [row] = await db.select(columns).from(models).where(eq(models.id, id));
  return row;
}

export function listModels(db: Db): Promise<Model[]> {
  return db.select(columns).from(models).orderBy(asc(models.registeredAt), asc(models.id));
}

export async function getActiveModel(db: Db): Promise<Model | undefined> {
  const [row] = await db.select(columns).from(models).where(eq(models.active, true));
  return row;
}

/** Makes `id` the one active model, in one statement so that two callers cannot leave two active. */
export async function setActiveModel(db: Db, id: string): Promise<Model> {
  const rows = await db
    .update(models)
    .set({ active: sql`${models.id} = ${id}` })
    .where(sql`exists (select 1 from ${models} where ${models.id} = ${id}) and (${models.active} or ${models.id} = ${id})`)
    .returning(columns);
  const row = rows.find((r) => r.id === id);
  if (!row) throw new NotFound('model', id);
  return row;
}

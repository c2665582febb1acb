import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Database, type Db } from '../../src/db/client.ts';
import { createCollection, deleteCollection, type Collection } from '../../src/db/queries/collections.ts';
import { registerModel, type Model } from '../../src/db/queries/models.ts';
import { models } from '../../src/db/schema/index.ts';

const url = process.env.DATABASE_URL;

/** Both database modes, for `describe.each`; service mode is skipped (and says why) without DATABASE_URL. */
export const dbModes = [
  { mode: 'embedded (PGlite)', skip: false, reason: '' },
  { mode: 'service (Postgres)', skip: !url, reason: 'DATABASE_URL is not set' },
] as const;
export type DbMode = (typeof dbModes)[number];

/** Opens the database for one describe block (running the real migrations) and closes it after. */
export function useDatabase(m: DbMode): () => Database {
  let database: Database | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    if (m.skip) return;
    if (m.mode.startsWith('service')) {
      database = await openDatabase({ url });
    } else {
      dir = await mkdtemp(join(tmpdir(), 'mira-db-'));
      database = await openDatabase({ dataDir: dir });
    }
  });
  afterAll(async () => {
    await database?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (!database) throw new Error('database not open');
    return database;
  };
}

export const suffix = (): string => randomBytes(4).toString('hex');

/** A model and collection that only this test uses; `cleanup` removes both. */
export async function ownCollection(db: Db, dim = 4): Promise<{ model: Model; collection: Collection; cleanup: () => Promise<void> }> {
  const s = suffix();
  const { model } = await registerModel(db, {
    name: `test-model-${s}`,
    version: '1',
    family: 'clip',
    path: `/nowhere/${s}`,
    checksum: randomUUID(),
    embedDim: dim,
    manifest: {},
  });
  const collection = await createCollection(db, { name: `test-${s}`, embedder: model.id });
  return {
    model,
    collection,
    cleanup: async () => {
      await deleteCollection(db, collection.id);
      await db.delete(models).where(eq(models.id, model.id));
    },
  };
}

export const sha = (): string => randomBytes(32).toString('hex');

export function newImage(collectionId: string, overrides: Partial<{ sha256: string; metadata: Record<string, unknown> }> = {}) {
  return { collectionId, sha256: sha(), source: 'upload:test.png', mime: 'image/png', width: 4, height: 3, bytes: 100, ...overrides };
}

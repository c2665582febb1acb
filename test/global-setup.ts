import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, type Db } from '../src/db/client.ts';
import { setActiveModel } from '../src/db/queries/models.ts';
import { registerBundle } from '../src/models/registry.ts';

/**
 * Service-mode tests share the Postgres at DATABASE_URL, and the active model is one row of it:
 * whichever process registered a model first when none was active made it the default. The
 * suite's servers run the tiny fixture bundle and its tests that name no model expect it, so the
 * suite starts from that state on a fresh database and on one that an earlier run (or a test
 * stopped between activating another version and restoring it) left otherwise. Tests that
 * activate another model restore the one they found.
 */
export default async function setup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const database = await openDatabase({ url, max: 1 });
  try {
    await pruneEarlierRuns(database.db);
    const { model } = await registerBundle(database.db, fileURLToPath(new URL('./fixtures/tiny-blip', import.meta.url)));
    await setActiveModel(database.db, model.id);
  } finally {
    await database.close();
  }
}

/**
 * Tests name their collections uniquely and leave them, with models registered from temporary
 * folders that are gone once the run ends; every test server's startup tries to load each
 * collection. What earlier runs left (over two hours old, so never a run going on beside this one)
 * is deleted here: the collections with their images, then the models nothing refers to.
 */
async function pruneEarlierRuns(db: Db): Promise<void> {
  await db.execute(sql`delete from collections where created_at < now() - interval '2 hours'`);
  await db.execute(sql`
    delete from models m
    where m.registered_at < now() - interval '2 hours' and not m.active
      and not exists (select 1 from collections c where m.id in (c.embedder, c.reranker, c.captioner, c.pending_embedder, c.previous_embedder))
      and not exists (select 1 from embeddings e where e.model_id = m.id)`);
}

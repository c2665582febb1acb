import { fileURLToPath } from 'node:url';
import { openDatabase } from '../src/db/client.ts';
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
    const { model } = await registerBundle(database.db, fileURLToPath(new URL('./fixtures/tiny-blip', import.meta.url)));
    await setActiveModel(database.db, model.id);
  } finally {
    await database.close();
  }
}

import { sql } from 'drizzle-orm';
import { dataDirOf, loadEnv } from '../../config.ts';
import { openDatabaseFor, rowsOf } from '../../db/client.ts';
import { blobStoreIn } from '../../storage/blob.ts';
import { sweepBlobs } from '../../storage/purge.ts';
import { parse, UsageError, type Command } from '../command.ts';

export const gc: Command = {
  summary: 'remove stored originals and thumbnails that no image holds any more',
  help: `usage: mira gc [--dry-run] [--force] [--json]

Deleting an image or a collection removes its blobs itself. This sweep finds what is left over:
blobs stored by an ingest that crashed before recording its image, or by a purge cut short. It
walks MIRA_DATA_DIR/blobs and removes every original (with its thumbnail) that no live image of
the database holds: Postgres with DATABASE_URL, else the embedded PGlite. Safe beside a running
server and workers: an ingest of the same bytes holds them until its image is recorded.

Point it only at the database these blobs belong to. A database without a single image is
refused unless --force, since against the wrong one the sweep would remove everything.

  --dry-run   count what would be removed, remove nothing
  --force     sweep even when the database holds no images

example:
  mira gc --dry-run`,
  async run(argv) {
    const { values } = parse(argv, { 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, json: { type: 'boolean' } }, false);
    const env = loadEnv();
    const database = await openDatabaseFor(env);
    try {
      const blobs = blobStoreIn(dataDirOf(env));
      const [row] = rowsOf<{ any: boolean }>(await database.db.execute(sql`select exists (select 1 from images) as any`));
      if (!row?.any && !values.force) {
        for await (const _ of blobs.originals()) {
          throw new UsageError(`the ${database.mode} database holds no images but ${blobs.root} holds blobs: is it the database they belong to? (--force sweeps anyway)`);
        }
      }
      const dryRun = !!values['dry-run'];
      const r = await sweepBlobs(database.db, blobs, { dryRun });
      if (values.json) console.log(JSON.stringify({ ...r, dryRun }));
      else console.log(`mira gc: ${r.checked} originals checked, ${r.removed} ${dryRun ? 'would be removed (dry run)' : 'removed'}`);
    } finally {
      await database.close();
    }
  },
};

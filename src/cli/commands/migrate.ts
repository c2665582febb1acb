import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import { loadEnv } from '../../config.ts';
import { MIGRATIONS, openDatabaseFor, rowsOf } from '../../db/client.ts';
import { parse, type Command } from '../command.ts';

export const migrate: Command = {
  summary: 'bring the database schema up to date, then exit',
  help: `usage: mira migrate

Applies the migrations in migrations/ that the database lacks and exits: Postgres with
DATABASE_URL, else the embedded PGlite in MIRA_DATA_DIR. Safe to run from several processes at
once (an advisory lock serializes them) and again and again (applied migrations are skipped).
\`mira serve\` and \`mira worker\` migrate at startup too; this is the one-shot step for
deployments that run it before them (docker/compose.yaml's migrate service).

example:
  DATABASE_URL=postgres://... mira migrate`,
  async run(argv) {
    parse(argv, {}, false);
    const env = loadEnv();
    const database = await openDatabaseFor(env);
    try {
      const [row] = rowsOf<{ n: number | string }>(await database.db.execute(sql`select count(*) as n from drizzle.__drizzle_migrations`));
      const journal = JSON.parse(await readFile(resolve(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] };
      const last = journal.entries.at(-1)?.tag ?? 'none';
      console.log(`mira migrate: ${database.mode} database up to date (${Number(row?.n ?? 0)} of ${journal.entries.length} migrations applied, last ${last})`);
    } finally {
      await database.close();
    }
  },
};

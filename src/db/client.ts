import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { dataDirOf, ROOT, type Env } from '../config.ts';
import * as schema from './schema/index.ts';

export type Schema = typeof schema;
/** Either driver: queries take this and do not care which. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  db: Db;
  mode: 'service' | 'embedded';
  close(): Promise<void>;
}

export const MIGRATIONS = resolve(ROOT, 'migrations');

/** Arbitrary constant: serializes migrations when several processes start at once. */
const MIGRATION_LOCK = 7_311_420_001;

/**
 * Service mode with a DATABASE_URL (postgres.js), embedded mode with PGlite in `dataDir`
 * otherwise. Both run the same migrations before returning.
 */
export async function openDatabase(opts: { url?: string; dataDir?: string; max?: number }): Promise<Database> {
  if (opts.url) {
    const client = postgres(opts.url, { max: opts.max ?? 10, onnotice: () => {} });
    const db = drizzlePostgres({ client, schema }) as unknown as Db;
    await db.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK})`);
    try {
      await migratePostgres(drizzlePostgres({ client, schema }), { migrationsFolder: MIGRATIONS });
    } finally {
      await db.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK})`);
    }
    return { db, mode: 'service', close: () => client.end({ timeout: 5 }) };
  }
  if (!opts.dataDir) throw new Error('openDatabase: give a DATABASE_URL or a data folder for the embedded database');
  await mkdir(opts.dataDir, { recursive: true });
  const client = await PGlite.create(resolve(opts.dataDir, 'pg'));
  const db = drizzlePglite({ client, schema });
  await migratePglite(db, { migrationsFolder: MIGRATIONS });
  return { db: db as unknown as Db, mode: 'embedded', close: () => client.close() };
}

/** The database the environment names: Postgres with DATABASE_URL, else PGlite in the data folder. */
export function openDatabaseFor(env: Env): Promise<Database> {
  return openDatabase(env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: dataDirOf(env) });
}

/** Refreshes planner statistics (embedded mode has no autovacuum to do it). */
export async function analyze(db: Db): Promise<void> {
  await db.execute(sql`analyze`);
}

/** Rows of a raw `db.execute()`: postgres.js returns an array, PGlite an object with `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

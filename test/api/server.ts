import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey, type Scope } from '../../src/api/keys.ts';
import type { ApiContext } from '../../src/app.ts';
import { loadEnv } from '../../src/config.ts';
import { openDatabase, type Database, type Db } from '../../src/db/client.ts';
import { registerModel } from '../../src/db/queries/models.ts';
import { InProcessJobQueue } from '../../src/jobs/in-process.ts';
import { startServer, type RunningServer } from '../../src/server.ts';

/** Postgres and Redis when DATABASE_URL / REDIS_URL are set (service mode), else PGlite (embedded). */
export const mode: 'service' | 'embedded' = process.env.DATABASE_URL ? 'service' : 'embedded';

export interface LiveServer {
  url: string;
  database: Database;
  ctx: ApiContext;
  /** A client with an unlimited admin key. */
  admin: MiraClient;
  /** A client with a new key of these scopes (and collections). */
  client(scopes: Scope[], collections?: string[] | null): Promise<MiraClient>;
}

export const unique = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/**
 * Starts a real server on 127.0.0.1, port 0, for one test file: the database (migrated), an
 * in-process job queue without processors, and the API. The context is the database-level part of
 * the AppContext, so these tests need no model bundle.
 */
export function useServer(env: Record<string, string> = {}): (() => LiveServer) & { mode: typeof mode } {
  let live: LiveServer | undefined;
  let server: RunningServer | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    const parsed = loadEnv({ ...process.env, ...env });
    const database = process.env.DATABASE_URL
      ? await openDatabase({ url: process.env.DATABASE_URL, max: 4 })
      : await openDatabase({ dataDir: (dir = await mkdtemp(join(tmpdir(), 'mira-api-'))) });
    const log = pino({ level: process.env.MIRA_TEST_LOG ?? 'silent' });
    const ctx: ApiContext = {
      env: Object.assign(parsed, { REDIS_URL: process.env.REDIS_URL }),
      log,
      mode: database.mode,
      db: database.db,
      queue: new InProcessJobQueue(() => ({}), new Map(), log),
    };
    server = await startServer(ctx, { host: '127.0.0.1', port: 0 });
    const url = server.url;
    const client = async (scopes: Scope[], collections: string[] | null = null) => {
      const { key } = await createKey(database.db, { name: unique('test-key'), scopes, collections });
      return new MiraClient({ baseUrl: url, apiKey: key });
    };
    live = { url, database, ctx, admin: await client(['admin']), client };
  });
  afterAll(async () => {
    await server?.close();
    await live?.ctx.queue.close();
    await live?.database.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const get = () => {
    if (!live) throw new Error('server not started');
    return live;
  };
  return Object.assign(get, { mode });
}

/** A model row only this test file uses (no bundle on disk: the routes here never run it). */
export async function ownModel(db: Db, opts: { name?: string; version?: string; graphs?: string[] } = {}) {
  const name = opts.name ?? unique('test-model');
  const graphs = Object.fromEntries((opts.graphs ?? ['vision', 'text']).map((g) => [g, { file: `${g}.onnx` }]));
  const { model } = await registerModel(db, {
    name,
    version: opts.version ?? '1',
    family: 'clip',
    path: `/nowhere/${name}`,
    checksum: randomBytes(16).toString('hex'),
    embedDim: 4,
    manifest: { graphs },
  });
  return model;
}

/** Runs the call and returns the MiraApiError it rejects with (failing when it resolves). */
export async function problemOf(call: Promise<unknown>): Promise<import('../../sdk/src/index.ts').MiraApiError> {
  const { MiraApiError } = await import('../../sdk/src/index.ts');
  try {
    const value = await call;
    throw new Error(`expected an error, got ${JSON.stringify(value)}`);
  } catch (err) {
    if (err instanceof MiraApiError) return err;
    throw err;
  }
}

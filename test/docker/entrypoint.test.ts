/**
 * docker/entrypoint.sh run outside Docker, from the checkout, against this machine's Postgres and
 * Redis: each role does what the image relies on. (No Docker engine runs here; the image itself is
 * not built by any test.)
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childProcessEnv, eventually } from '../support/context.ts';
import { REPO } from '../support/env.ts';
import { runMira, spawnMira, startServe } from '../support/mira-process.ts';
import { dropRedisPrefix, privateDatabase } from '../support/private-services.ts';

const ENTRYPOINT = resolve(REPO, 'docker/entrypoint.sh');
const { DATABASE_URL, REDIS_URL } = process.env;
if (!DATABASE_URL || !REDIS_URL) console.warn('entrypoint service roles skipped: DATABASE_URL and REDIS_URL are not both set');

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('docker/entrypoint.sh without services', () => {
  it('demo runs `mira demo` with the arguments that follow the role', async () => {
    const r = await runMira(['--help'], {}, 60_000, [ENTRYPOINT, 'demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: mira demo/);
  });

  it('refuses an unknown role with exit 2 and one line naming the roles', async () => {
    const r = await runMira(['nonsense'], {}, 30_000, [ENTRYPOINT]);
    expect(r.code, r.stderr).toBe(2);
    expect(lines(r.stderr), r.stderr).toEqual(['entrypoint: unknown role "nonsense" (one of: api | worker | migrate | demo)']);
    expect(r.stdout).toBe('');
  });

  it('says which Postgres did not answer within MIRA_WAIT_SECONDS, exits 1, and never prints the password', async () => {
    const port = await closedPort();
    const r = await runMira([], { DATABASE_URL: `postgres://mira:s3cret@127.0.0.1:${port}/mira`, MIRA_WAIT_SECONDS: '2' }, 60_000, [ENTRYPOINT, 'migrate']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`entrypoint: postgres at 127.0.0.1:${port}/mira did not answer within 2 s (MIRA_WAIT_SECONDS): connect ECONNREFUSED`);
    expect(r.stderr).not.toContain('s3cret');
  });

  it('says which Redis did not answer for the worker role', async () => {
    const port = await closedPort();
    const r = await runMira([], { REDIS_URL: `redis://127.0.0.1:${port}`, MIRA_WAIT_SECONDS: '1' }, 60_000, [ENTRYPOINT, 'worker']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`entrypoint: redis at 127.0.0.1:${port} did not answer within 1 s`);
  });
});

describe.skipIf(!DATABASE_URL || !REDIS_URL)('docker/entrypoint.sh roles on the real Postgres and Redis', () => {
  let pg: { url: string; drop(): Promise<void> } | undefined;
  let env: Record<string, string> = {};
  let dataDir: string | undefined;

  beforeAll(async () => {
    // A database of its own: `migrate` must create the schema from nothing, and `api` loads every collection.
    pg = await privateDatabase(DATABASE_URL!, 'mira_entrypoint');
    // API and worker share one data folder, as in docker/compose.yaml.
    ({ env, dataDir } = await childProcessEnv('entrypoint', { DATABASE_URL: pg.url, MIRA_WAIT_SECONDS: '30' }));
  });
  afterAll(async () => {
    if (env.MIRA_QUEUE_PREFIX) await dropRedisPrefix(REDIS_URL!, env.MIRA_QUEUE_PREFIX);
    await pg?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('migrate creates the schema in an empty database, exits 0, and exits 0 again when there is nothing to do', async () => {
    const first = await runMira([], env, 120_000, [ENTRYPOINT, 'migrate']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/mira migrate: service database up to date \((\d+) of \1 migrations applied/);
    const sql = postgres(pg!.url, { max: 1, onnotice: () => {} });
    try {
      const tables = (await sql`select table_name from information_schema.tables where table_schema = 'public'`).map((r) => r.table_name as string);
      expect(tables, tables.join(', ')).toEqual(expect.arrayContaining(['images', 'collections', 'models', 'jobs', 'api_keys']));
    } finally {
      await sql.end({ timeout: 5 });
    }
    const again = await runMira([], env, 120_000, [ENTRYPOINT, 'migrate']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
  });

  it('api serves, /readyz goes 200, and SIGTERM stops it with exit 0', async () => {
    const api = await startServe(env, 120_000, [ENTRYPOINT, 'api']);
    try {
      const ready = await fetch(`${api.url}/readyz`);
      expect(ready.status, await ready.clone().text()).toBe(200);
      expect(await ready.json()).toEqual({ ready: true });
    } finally {
      await api.stop();
    }
    expect(await api.exited, api.output().stderr).toEqual({ code: 0, signal: null });
  });

  it('worker starts, logs JSON, and SIGTERM stops it with exit 0', async () => {
    const worker = spawnMira([], { ...env, MIRA_LOG_LEVEL: 'info' }, [ENTRYPOINT, 'worker']);
    try {
      await eventually('the worker to start', async () => (worker.output().stderr.includes('"msg":"worker started"') ? true : undefined), 120_000);
    } finally {
      await worker.stop();
    }
    const { stderr } = worker.output();
    expect(await worker.exited, stderr).toEqual({ code: 0, signal: null });
    const logged = lines(stderr).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(logged.map((l) => l.msg), stderr).toEqual(expect.arrayContaining(['worker started', 'worker stopping', 'worker stopped']));
  });
});

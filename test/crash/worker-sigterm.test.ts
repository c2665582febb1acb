/**
 * Graceful stop: a worker told SIGTERM mid-stream stops taking jobs, finishes or releases its active
 * ones within the deadline, closes its connections and exits 0; a new worker finishes the rest.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { ensureCollection } from '../../src/cli/collection.ts';
import { deleteCollection } from '../../src/db/queries/collections.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { createLogger } from '../../src/log.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { childProcessEnv, eventually, uniqueName } from '../support/context.ts';
import { REPO } from '../support/env.ts';

const service = !!(process.env.DATABASE_URL && process.env.REDIS_URL);
if (!service) console.warn('SIGTERM test skipped: it needs DATABASE_URL and REDIS_URL');

describe.skipIf(!service)('worker shutdown on SIGTERM', () => {
  let dataDir: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  let ctx: AppContext | undefined;
  let collectionId: string | undefined;
  afterAll(async () => {
    if (ctx && collectionId) await deleteCollection(ctx.db, collectionId);
    await ctx?.close();
    await dropDatabase?.();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('stops within the deadline, exits 0, and loses no job', async () => {
    const child = await childProcessEnv('sigterm', { MIRA_LOG_LEVEL: 'info' });
    dropDatabase = child.dropDatabase;
    dataDir = child.dataDir;
    const envVars = child.env;
    ctx = await createContext({ role: 'cli', env: loadEnv(envVars as NodeJS.ProcessEnv), log: createLogger('sigterm-test', 'warn') });
    const collection = await ensureCollection(ctx, uniqueName('sigterm'));
    collectionId = collection.id;
    const N = 120;
    const records = sampleScenes(99, N);
    for (const r of records) {
      await ingestImage(ctx, collection, { kind: 'upload', bytes: await renderScene(r.scene, { size: 32, layout: r.layout }), filename: r.file });
    }
    const spawnWorker = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'workers/main.ts')], { env: { ...process.env, ...envVars }, stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      child.stderr.on('data', (d) => (log += d));
      return { child, log: () => log };
    };
    const first = spawnWorker();
    const ready = async () => (await countImagesByStatus(ctx!.db, collection.id)).ready ?? 0;
    await eventually('work under way', async () => ((await ready()) > 0 ? true : undefined), 60_000);
    const t0 = Date.now();
    first.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => first.child.once('exit', r));
    const stopMs = Date.now() - t0;
    expect(code, first.log()).toBe(0);
    expect(stopMs).toBeLessThan(30_000);
    expect(first.log()).toContain('worker stopped');
    const atStop = await ready();
    expect(atStop).toBeLessThan(N); // it really stopped mid-stream

    const second = spawnWorker();
    await eventually('the rest extracted by a new worker', async () => ((await ready()) === N ? true : undefined), 120_000);
    second.child.kill('SIGTERM');
    expect(await new Promise((r) => second.child.once('exit', r))).toBe(0);
  }, 240_000);
});

/**
 * Crash test: ingest 500 scenes while the worker process is killed with SIGKILL at random moments
 * and restarted. Afterwards the images, their Postgres rows and the index labels agree one to one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { ensureCollection } from '../../src/cli/collection.ts';
import { deleteCollection } from '../../src/db/queries/collections.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { embeddings, images } from '../../src/db/schema/index.ts';
import { IndexRegistry } from '../../src/index/index.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { createLogger } from '../../src/log.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { and, eq, isNull } from 'drizzle-orm';
import { childProcessEnv, eventually, uniqueName } from '../support/context.ts';
import { REPO } from '../support/env.ts';

const service = !!(process.env.DATABASE_URL && process.env.REDIS_URL);
if (!service) console.warn('crash test skipped: it needs DATABASE_URL and REDIS_URL (real Postgres and Redis)');

const N = 500;
const KILLS = 5;

describe.skipIf(!service)('worker crashes during ingestion', () => {
  let dataDir: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  let ctx: AppContext | undefined;
  let worker: ChildProcess | undefined;
  let collectionId: string | undefined;
  afterAll(async () => {
    worker?.kill('SIGKILL');
    if (ctx && collectionId) await deleteCollection(ctx.db, collectionId);
    await ctx?.close();
    await dropDatabase?.();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`loses no image and doubles none across ${KILLS} SIGKILLs`, async () => {
    const child = await childProcessEnv('crash', { MIRA_JOB_LOCK_MS: '4000', MIRA_RECONCILE_MS: '3000', MIRA_CAPTION_ON_INGEST: 'false' });
    dropDatabase = child.dropDatabase;
    dataDir = child.dataDir;
    const envVars = child.env;
    ctx = await createContext({ role: 'cli', env: loadEnv(envVars as NodeJS.ProcessEnv), log: createLogger('crash-test', 'warn') });
    const collection = await ensureCollection(ctx, uniqueName('crash'));
    collectionId = collection.id;
    const startWorker = () =>
      spawn(process.execPath, ['--import', 'tsx', join(REPO, 'workers/main.ts')], { env: { ...process.env, ...envVars }, stdio: ['ignore', 'ignore', 'pipe'] });

    const records = sampleScenes(77, N);
    const ready = async () => (await countImagesByStatus(ctx!.db, collection.id)).ready ?? 0;
    let kills = 0;
    const readyAtKill: number[] = [];
    worker = startWorker();
    const killer = (async () => {
      while (kills < KILLS) {
        // Kill a worker that is working: after it has finished something, at a random moment.
        const before = await ready();
        await eventually('the worker to make progress', async () => ((await ready()) > before ? true : undefined), 60_000);
        await new Promise((r) => setTimeout(r, Math.random() * 300));
        worker!.kill('SIGKILL');
        await new Promise((r) => worker!.once('exit', r));
        readyAtKill.push(await ready());
        kills++;
        worker = startWorker();
      }
    })();

    // The API side accepts images while the worker dies and comes back.
    for (let i = 0; i < N; i += 25) {
      const batch = records.slice(i, i + 25);
      await Promise.all(
        batch.map(async (r) => {
          const bytes = await renderScene(r.scene, { size: 32, layout: r.layout });
          await ingestImage(ctx!, collection, { kind: 'upload', bytes, filename: r.file });
        }),
      );
    }
    await killer;
    expect(kills).toBe(KILLS);
    // Every kill landed mid-stream: work had been done and work remained.
    expect(readyAtKill.every((n) => n > 0 && n < N), `ready at each kill: ${readyAtKill.join(', ')}`).toBe(true);
    await eventually('every image extracted', async () => ((await countImagesByStatus(ctx!.db, collection.id)).ready === N ? true : undefined), 240_000);

    const imageRows = await ctx.db.select({ id: images.id, sha: images.sha256 }).from(images).where(and(eq(images.collectionId, collection.id), isNull(images.deletedAt)));
    const embRows = await ctx.db
      .select({ imageId: embeddings.imageId, label: embeddings.label })
      .from(embeddings)
      .where(and(eq(embeddings.collectionId, collection.id), isNull(embeddings.deletedSeq)));
    expect(new Set(imageRows.map((r) => r.sha)).size).toBe(N);
    expect(imageRows).toHaveLength(N);
    expect(embRows).toHaveLength(N);
    expect(new Set(embRows.map((r) => r.imageId))).toEqual(new Set(imageRows.map((r) => r.id)));

    // A fresh replica's index holds exactly those labels.
    const registry = new IndexRegistry({ db: ctx.db, dataDir: join(dataDir, 'replica-index') });
    const index = await registry.get(collection.id, collection.embedder);
    await index.sync();
    expect(index.stats().count).toBe(N);
    const found = new Set(index.search(new Float32Array(collection.dim).fill(1 / Math.sqrt(collection.dim)), N).map((h) => h.label));
    expect(found).toEqual(new Set(embRows.map((r) => r.label)));
    await registry.close();
  }, 300_000);
});

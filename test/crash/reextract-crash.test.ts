/**
 * Crash test: the worker running a re-extraction is killed with SIGKILL mid-job. Until a worker
 * comes back the old version stays active and intact (searches answer from it); the job is then
 * delivered again, embeds only the images the shadow lacks, and switches the collection.
 */
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { createCollection, deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { countLiveEmbeddings } from '../../src/db/queries/embeddings.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { createLogger } from '../../src/log.ts';
import { startReextraction } from '../../src/reextract/start.ts';
import { versionCounts } from '../../src/reextract/versions.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { search } from '../../src/search/search.ts';
import { childProcessEnv, eventually, uniqueName } from '../support/context.ts';
import { spawnMira, type MiraProcess } from '../support/mira-process.ts';
import { finished, twoVersions } from '../reextract/helpers.ts';

const service = !!(process.env.DATABASE_URL && process.env.REDIS_URL);
if (!service) console.warn('re-extraction crash test skipped: it needs DATABASE_URL and REDIS_URL (real Postgres and Redis)');

const N = 96;

describe.skipIf(!service)('a worker killed during re-extraction', () => {
  let dataDir: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  let ctx: AppContext | undefined;
  let worker: MiraProcess | undefined;
  let collectionId: string | undefined;
  let versions: Awaited<ReturnType<typeof twoVersions>> | undefined;
  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    if (ctx && collectionId) await deleteCollection(ctx.db, collectionId);
    await ctx?.close();
    await dropDatabase?.();
    await versions?.cleanup();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('leaves the old version active and intact, and the job resumes and switches after a restart', async () => {
    const child = await childProcessEnv('reextract-crash', { MIRA_JOB_LOCK_MS: '3000', MIRA_CAPTION_ON_INGEST: 'false' });
    dropDatabase = child.dropDatabase;
    dataDir = child.dataDir;
    ctx = await createContext({ role: 'cli', env: loadEnv(child.env as NodeJS.ProcessEnv), log: createLogger('reextract-crash', 'warn') });
    versions = await twoVersions(ctx);
    const { v1, v2 } = versions;
    const c = await createCollection(ctx.db, { name: uniqueName('reextract-crash'), embedder: v1.id });
    collectionId = c.id;
    worker = spawnMira(['worker'], child.env);
    for (const r of sampleScenes(51, N)) await ingestImage(ctx, c, { kind: 'upload', bytes: await renderScene(r.scene, { size: 64, layout: r.layout }), filename: r.file });
    await eventually('images ready', async () => ((await countImagesByStatus(ctx!.db, c.id)).ready === N ? true : undefined), 120_000);

    const { job } = await startReextraction(ctx, c.id, v2.id);
    await eventually('shadow rows', async () => ((await countLiveEmbeddings(ctx!.db, { collectionId: c.id, modelId: v2.id })) > 0 ? true : undefined), 120_000, 10);
    worker.child.kill('SIGKILL');
    await worker.exited;

    const shadow = await versionCounts(ctx.db, c.id, v2.id);
    expect(shadow.labels, `killed mid-job: ${JSON.stringify(shadow)}`).toBeLessThan(N);
    const during = (await getCollection(ctx.db, { id: c.id }))!;
    expect(during, JSON.stringify(during)).toMatchObject({ embedder: v1.id, pendingEmbedder: v2.id, pendingJobId: job.id });
    expect(await versionCounts(ctx.db, c.id, v1.id)).toEqual({ images: N, labels: N, missing: 0 });
    const r = await search(ctx, { collection: during, query: { text: 'a blue square' }, k: 5, rerank: { enabled: false } });
    expect(r.model).toBe(v1.id);
    expect(r.hits).toHaveLength(5);

    worker = spawnMira(['worker'], child.env);
    const done = await finished(ctx, job.id, 180_000);
    expect(done.job.state, JSON.stringify(done.job)).toBe('completed');
    expect(done.job.result, JSON.stringify(done.job.result)).toMatchObject({ switched: true, images: N, labels: N });
    expect((done.job.result as { embedded: number }).embedded, 'the resumed try embeds only what the shadow lacked').toBeLessThanOrEqual(N - shadow.labels);
    expect(done.collection).toMatchObject({ embedder: v2.id, previousEmbedder: v1.id, pendingEmbedder: null });
  }, 300_000);
});

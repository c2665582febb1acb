/**
 * Restart test: an API process is killed with SIGKILL between writes (its index file is then older
 * than Postgres). The next start loads the file, replays the rows above its last label, and
 * matches Postgres; no search returns a deleted image.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { and, eq, isNull, isNotNull } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { embeddings } from '../../src/db/schema/index.ts';
import { createLogger } from '../../src/log.ts';
import { search } from '../../src/search/search.ts';
import { childProcessEnv, uniqueName } from '../support/context.ts';
import { REPO } from '../support/env.ts';

const hasPg = !!process.env.DATABASE_URL;
if (!hasPg) console.warn('API restart test skipped: it needs DATABASE_URL (a Postgres the killed process and its successor share)');

describe.skipIf(!hasPg)('API restart after SIGKILL', () => {
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

  it('the index matches Postgres after restart and never returns a deleted image', async () => {
    const name = uniqueName('restart');
    const prepared = await childProcessEnv('restart', { REDIS_URL: '', MIRA_CAPTION_ON_INGEST: 'false' });
    dropDatabase = prepared.dropDatabase;
    dataDir = prepared.dataDir;
    const env = prepared.env;
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/crash/api-child.ts')], {
      env: { ...process.env, ...env, CHILD_COLLECTION: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Kill it at a random write once it has written a few dozen.
    const target = 30 + Math.floor(Math.random() * 20);
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const n = Number(d.toString().trim().split('\n').pop());
        if (n >= target) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
    });
    await new Promise((r) => child.once('exit', r));

    ctx = await createContext({ role: 'api', env: loadEnv({ ...process.env, ...env }), log: createLogger('restart', 'warn') });
    const collection = (await getCollection(ctx.db, { name }))!;
    collectionId = collection.id;
    const index = await ctx.indexes.get(collection.id, collection.embedder);
    await index.sync();
    const where = (deleted: boolean) =>
      and(eq(embeddings.collectionId, collection.id), deleted ? isNotNull(embeddings.deletedSeq) : isNull(embeddings.deletedSeq));
    const live = await ctx.db.select({ label: embeddings.label, imageId: embeddings.imageId }).from(embeddings).where(where(false));
    const deleted = await ctx.db.select({ imageId: embeddings.imageId }).from(embeddings).where(where(true));
    expect(deleted.length).toBeGreaterThan(0);
    expect(index.stats().count).toBe(live.length);
    const all = index.search(new Float32Array(collection.dim).fill(1), live.length + deleted.length, { allowedLabels: new Set(live.map((r) => r.label)) });
    expect(new Set(all.map((h) => h.label))).toEqual(new Set(live.map((r) => r.label)));

    const result = await search(ctx, { collection, query: { text: 'a red circle' }, k: Math.min(100, live.length), rerank: { enabled: false } });
    const gone = new Set(deleted.map((r) => r.imageId));
    expect(result.hits.length).toBe(Math.min(100, live.length));
    expect(result.hits.some((h) => gone.has(h.image.id))).toBe(false);
  }, 120_000);
});

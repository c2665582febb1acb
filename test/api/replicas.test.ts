import { randomInt, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { registerBundle } from '../../src/models/registry.ts';
import { TINY_BLIP } from '../inference/helpers.ts';
import { eventually } from '../support/context.ts';
import { dropRedisPrefix, privateDatabase } from '../support/private-services.ts';
import { spawnMira, startServe, type MiraProcess, type ServeProcess } from '../support/mira-process.ts';
import { unique } from './server.ts';

const { DATABASE_URL, REDIS_URL } = process.env;
const data = MiraClient.data;

/**
 * Two `mira serve` processes on one Postgres and one Redis, each with its own data folder, and one
 * `mira worker`: an image uploaded through replica A is found by a search on replica B within 2 s
 * of being ready, and its delete through A is gone from B's results within 2 s (issue 4 §3).
 * B searches without re-ranking: the originals and token features it would need are in A's folder.
 */
describe.skipIf(!DATABASE_URL || !REDIS_URL)('two mira serve replicas and a worker', () => {
  let shared: Record<string, string>;
  let pg: { url: string; drop(): Promise<void> } | undefined;
  let database: Database;
  let a: ServeProcess | undefined;
  let b: ServeProcess | undefined;
  let worker: MiraProcess | undefined;
  let dirA: string | undefined;
  let A: MiraClient;
  let B: MiraClient;

  beforeAll(async () => {
    // A database of its own: a replica loads every collection at startup, and the shared one holds many.
    pg = await privateDatabase(DATABASE_URL!, 'mira_replicas');
    shared = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_URL!,
      MIRA_QUEUE_PREFIX: `mira-replicas-${randomUUID().slice(0, 8)}`,
      // The test polls every 20 ms to time the replicas; the default limit would answer 429.
      MIRA_RATE_LIMIT_PER_MIN: '100000',
    };
    database = await openDatabase({ url: pg.url });
    // One at a time: each process migrates and registers the bundle at startup. Blobs and token
    // features live in the data folder, so the worker shares A's (as on one host); B has its own.
    dirA = await mkdtemp(join(tmpdir(), 'mira-replica-a-'));
    a = await startServe({ ...shared, MIRA_DATA_DIR: dirA });
    b = await startServe(shared);
    worker = spawnMira(['worker'], { ...shared, MIRA_DATA_DIR: dirA });
    const created = await createKey(database.db, { name: unique('replicas'), scopes: ['admin'], collections: null });
    A = new MiraClient({ baseUrl: a.url, apiKey: created.key });
    B = new MiraClient({ baseUrl: b.url, apiKey: created.key });
  }, 300_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), worker?.stop()]);
    await database?.close();
    await pg?.drop();
    if (shared) await dropRedisPrefix(REDIS_URL!, shared.MIRA_QUEUE_PREFIX!);
    if (dirA) await rm(dirA, { recursive: true, force: true });
  }, 60_000);

  /** Milliseconds from `since` until B's search results satisfy `ok` (polled every 20 ms). */
  async function msUntilOnB(collectionId: string, since: number, ok: (ids: string[]) => boolean): Promise<number> {
    await eventually(
      'replica B to catch up',
      async () => {
        const res = await data(B.api.POST('/v1/search', { body: { collectionId, text: 'a picture', k: 10, rerank: { enabled: false } } }));
        return ok(res.results.map((r) => r.id)) || undefined;
      },
      10_000,
      20,
    );
    return performance.now() - since;
  }

  it('an image uploaded through A is found on B within 2 s of being ready; its delete through A leaves B within 2 s', async () => {
    // The bundle both replicas registered at startup (the shared database's active model may be another).
    const { model } = await registerBundle(database.db, TINY_BLIP);
    const col = await data(A.api.POST('/v1/collections', { body: { name: unique('replicas'), embedder: model.id } }));
    try {
      // B opens the collection's index while it is empty: from here on it can only follow.
      expect((await data(B.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a picture', k: 10 } }))).results).toEqual([]);

      const bytes = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: randomInt(256), g: 90, b: 40 } } }).png().toBuffer();
      const uploaded = await A.uploadImage(col.id, bytes);
      const id = uploaded.image.id;
      await eventually('the worker to extract the image', async () => ((await A.getImage(id)).status === 'ready' ? true : undefined), 60_000, 20).catch((err: Error) => {
        throw new Error(`${err.message}\nworker stderr:\n${worker!.output().stderr.slice(-4000)}`);
      });
      const ready = performance.now();
      const foundMs = await msUntilOnB(col.id, ready, (ids) => ids.includes(id));
      expect(foundMs, `found on B ${foundMs.toFixed(0)} ms after ready`).toBeLessThanOrEqual(2000);

      await data(A.api.DELETE('/v1/images/{id}', { params: { path: { id } } }));
      const deleted = performance.now();
      const goneMs = await msUntilOnB(col.id, deleted, (ids) => !ids.includes(id));
      expect(goneMs, `gone from B ${goneMs.toFixed(0)} ms after the delete`).toBeLessThanOrEqual(2000);
      console.log(`replicas: found on B ${foundMs.toFixed(0)} ms after ready, gone ${goneMs.toFixed(0)} ms after delete`);
    } finally {
      await A.api.DELETE('/v1/collections/{id}', { params: { path: { id: col.id } } });
    }
  }, 120_000);
});

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteCollection } from '../../src/db/queries/collections.ts';
import { deleteImage, insertImage } from '../../src/db/queries/images.ts';
import { ensureCollection } from '../../src/cli/collection.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { LocalBlobStore, sha256Hex, type BlobStore } from '../../src/storage/blob.ts';
import { holdingBlob, purgeBlobs, sweepBlobs } from '../../src/storage/purge.ts';
import { dbModes, newImage, ownCollection, useDatabase } from '../db/modes.ts';
import { testContext } from '../support/context.ts';

describe.each(dbModes)('blob purge, $mode', (m) => {
  describe.skipIf(m.skip)('blob purge', () => {
    const database = useDatabase(m);
    let root: string;
    let blobs: LocalBlobStore;
    const owned: (() => Promise<void>)[] = [];
    beforeEach(async () => {
      root = await mkdtemp(join(tmpdir(), 'mira-purge-'));
      blobs = new LocalBlobStore(root);
    });
    afterEach(() => rm(root, { recursive: true, force: true }));
    afterAll(async () => {
      for (const cleanup of owned) await cleanup();
    });

    let a: Awaited<ReturnType<typeof ownCollection>>['collection'];
    let b: typeof a;
    beforeAll(async () => {
      const one = await ownCollection(database().db);
      const two = await ownCollection(database().db);
      owned.push(one.cleanup, two.cleanup);
      a = one.collection;
      b = two.collection;
    });

    /** An original and its thumbnail in the store, and the image row when a collection is given. */
    async function stored(collectionId?: string): Promise<{ sha256: string; imageId?: string }> {
      const { key } = await blobs.put(randomBytes(300), 'original');
      await blobs.put(randomBytes(40), 'thumbnail', key);
      if (!collectionId) return { sha256: key };
      const { image } = await insertImage(database().db, newImage(collectionId, { sha256: key }));
      return { sha256: key, imageId: image.id };
    }
    const kept = async (sha256: string) => [await blobs.has(sha256, 'original'), await blobs.has(sha256, 'thumbnail')];

    it('removes the blobs of a deleted image, and keeps those a live image of any collection holds', async () => {
      const { db } = database();
      const alone = await stored(a.id);
      const shared = await stored(a.id);
      await insertImage(db, newImage(b.id, { sha256: shared.sha256 }));
      const live = await stored(a.id);
      await deleteImage(db, alone.imageId!);
      await deleteImage(db, shared.imageId!);

      expect(await purgeBlobs(db, blobs, [alone.sha256, shared.sha256, live.sha256, alone.sha256])).toBe(1);
      expect(await kept(alone.sha256)).toEqual([false, false]);
      expect(await kept(shared.sha256)).toEqual([true, true]); // collection b still holds it
      expect(await kept(live.sha256)).toEqual([true, true]);
      expect(await purgeBlobs(db, blobs, [alone.sha256])).toBe(0); // twice is fine
    });

    it('deleting a collection returns its images, whose blobs are then free unless another collection holds them', async () => {
      const { db } = database();
      const c = await ownCollection(db);
      owned.push(c.cleanup);
      const own = await stored(c.collection.id);
      const shared = await stored(c.collection.id);
      await insertImage(db, newImage(b.id, { sha256: shared.sha256 }));
      const deleted = await deleteCollection(db, c.collection.id);
      expect(deleted?.collection.id).toBe(c.collection.id);
      expect(deleted?.images.map((i) => i.id).sort()).toEqual([own.imageId, shared.imageId].sort());
      expect(await purgeBlobs(db, blobs, deleted!.images.map((i) => i.sha256))).toBe(1);
      expect(await kept(own.sha256)).toEqual([false, false]);
      expect(await kept(shared.sha256)).toEqual([true, true]);
      expect(await deleteCollection(db, c.collection.id)).toBeUndefined();
    });

    it('a purge waits for an ingest holding the same bytes, then finds its image and keeps the blobs', async () => {
      const { db } = database();
      const { key } = await blobs.put(randomBytes(300), 'original'); // bytes an earlier, deleted image left
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let stored_!: () => void;
      const blobsStored = new Promise<void>((r) => (stored_ = r));
      const ingest = holdingBlob(db, key, async (tx) => {
        await blobs.put(randomBytes(40), 'thumbnail', key);
        stored_();
        await gate; // the ingest is between storing the blobs and recording the image
        return insertImage(tx, newImage(a.id, { sha256: key }));
      });
      await blobsStored;
      let purged: number | undefined;
      // PGlite has one connection: its purge queues behind the ingest's transaction; Postgres's waits on the lock.
      const purge = purgeBlobs(db, blobs, [key]).then((n) => (purged = n));
      await new Promise((r) => setTimeout(r, 300));
      expect(purged).toBeUndefined();
      expect(await kept(key)).toEqual([true, true]);
      release();
      await ingest;
      await purge;
      expect(purged).toBe(0);
      expect(await kept(key)).toEqual([true, true]);
    });

    it('a sweep removes every original no live image holds, and nothing else', async () => {
      const { db } = database();
      const orphan = await stored(); // stored, then the ingest died before recording it
      const deleted = await stored(a.id);
      await deleteImage(db, deleted.imageId!);
      const live = await stored(a.id);
      await writeFile(join(root, 'originals', 'unfinished.tmp'), 'x'); // not a key: left alone
      expect(await sweepBlobs(db, blobs, { batch: 2, dryRun: true })).toEqual({ checked: 3, removed: 2 });
      expect(await kept(orphan.sha256)).toEqual([true, true]);
      expect(await sweepBlobs(db, blobs, { batch: 2 })).toEqual({ checked: 3, removed: 2 });
      expect(await kept(orphan.sha256)).toEqual([false, false]);
      expect(await kept(deleted.sha256)).toEqual([false, false]);
      expect(await kept(live.sha256)).toEqual([true, true]);
      expect(await sweepBlobs(db, blobs)).toEqual({ checked: 1, removed: 0 });
    });
  });
});

describe('ingest against a purge of the same bytes', () => {
  it('a purge that runs between storing the blobs and recording the image makes the ingest store them again', async () => {
    const { ctx, stop } = await testContext('embedded');
    try {
      const collection = await ensureCollection(ctx, 'purge-race');
      const bytes = await renderScene(sampleScenes(5, 1)[0]!.scene, { size: 64 });
      const sha256 = sha256Hex(bytes);
      let puts = 0;
      let purged: number | undefined;
      // The blob store the ingest sees: after its first two writes (original, thumbnail), another
      // collection's delete purges the same bytes, before the ingest takes the lock.
      const blobs: BlobStore = {
        put: async (b, kind, key) => {
          const r = await ctx.blobs.put(b, kind, key);
          if (++puts === 2) purged = await purgeBlobs(ctx.db, ctx.blobs, [sha256]);
          return r;
        },
        get: (k, kind) => ctx.blobs.get(k, kind),
        has: (k, kind) => ctx.blobs.has(k, kind),
        delete: (k, kind) => ctx.blobs.delete(k, kind),
        originals: () => ctx.blobs.originals(),
      };
      const r = await ingestImage({ db: ctx.db, blobs, queue: ctx.queue, limits: ctx.limits }, collection, { kind: 'upload', bytes, filename: 'race.png' });
      expect(purged).toBe(1);
      expect(r.created).toBe(true);
      expect([await ctx.blobs.has(sha256, 'original'), await ctx.blobs.has(sha256, 'thumbnail')]).toEqual([true, true]);
    } finally {
      await stop();
    }
  }, 60_000);
});

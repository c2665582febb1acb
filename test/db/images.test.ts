import { describe, expect, it } from 'vitest';
import { InvalidCursor, NotFound } from '../../src/db/errors.ts';
import { countImagesByStatus, deleteImage, getImage, imageKeys, imagesByIds, insertImage, listImages, updateImage, type Image } from '../../src/db/queries/images.ts';
import { dbModes, newImage, ownCollection, sha, useDatabase } from './modes.ts';

describe.each(dbModes)('images, $mode', (m) => {
  describe.skipIf(m.skip)('images', () => {
    const database = useDatabase(m);
    const db = () => database().db;

    it('the same bytes in a collection are one image', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const img = newImage(collection.id);
        const first = await insertImage(db(), img);
        const second = await insertImage(db(), { ...img, source: 'upload:again.png' });
        expect(first.created).toBe(true);
        expect(second.created).toBe(false);
        expect(second.image.id).toBe(first.image.id);
        expect(second.image.source, 'the first ingest wins').toBe('upload:test.png');
      } finally {
        await cleanup();
      }
    });

    it('concurrent inserts of the same bytes all get one id, and exactly one of them created it', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const img = newImage(collection.id);
        const results = await Promise.all(Array.from({ length: 16 }, () => insertImage(db(), img)));
        expect(new Set(results.map((r) => r.image.id)).size).toBe(1);
        expect(results.filter((r) => r.created).length).toBe(1);
      } finally {
        await cleanup();
      }
    });

    it('the same bytes in another collection are another image', async () => {
      const a = await ownCollection(db());
      const b = await ownCollection(db());
      try {
        const sha256 = sha();
        const inA = await insertImage(db(), newImage(a.collection.id, { sha256 }));
        const inB = await insertImage(db(), newImage(b.collection.id, { sha256 }));
        expect(inB.created).toBe(true);
        expect(inB.image.id).not.toBe(inA.image.id);
      } finally {
        await a.cleanup();
        await b.cleanup();
      }
    });

    it('after a delete, the same bytes make a new image, and deleting twice is harmless', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const img = newImage(collection.id);
        const { image } = await insertImage(db(), img);
        expect(await deleteImage(db(), image.id)).toBe(true);
        expect(await deleteImage(db(), image.id)).toBe(false);
        expect(await getImage(db(), image.id)).toBeUndefined();
        expect((await getImage(db(), image.id, { includeDeleted: true }))?.deletedAt).toBeInstanceOf(Date);
        const again = await insertImage(db(), img);
        expect(again.created).toBe(true);
        expect(again.image.id).not.toBe(image.id);
      } finally {
        await cleanup();
      }
    });

    it('an image for a collection that does not exist is refused with NotFound', async () => {
      await expect(insertImage(db(), newImage('00000000-0000-4000-8000-000000000000'))).rejects.toBeInstanceOf(NotFound);
    });

    it('updates change metadata, caption, status and error, and refuse unknown images', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const { image } = await insertImage(db(), newImage(collection.id));
        const updated = await updateImage(db(), image.id, { metadata: { tag: 'x' }, caption: 'a cat', captionModel: 'm@1', status: 'failed', error: 'bad' });
        expect(updated).toMatchObject({ metadata: { tag: 'x' }, caption: 'a cat', status: 'failed', error: 'bad' });
        expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(image.updatedAt.getTime());
        await expect(updateImage(db(), '00000000-0000-4000-8000-000000000000', { caption: 'x' })).rejects.toBeInstanceOf(NotFound);
        expect(await imageKeys(db(), [image.id, 'not-a-uuid'])).toEqual(new Map([[image.id, image.sha256]]));
      } finally {
        await cleanup();
      }
    });

    it('lists by metadata containment and status', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const red = await insertImage(db(), newImage(collection.id, { metadata: { color: 'red', tags: ['a', 'b'] } }));
        await insertImage(db(), newImage(collection.id, { metadata: { color: 'blue', tags: ['a'] } }));
        await updateImage(db(), red.image.id, { status: 'ready' });
        const byColor = await listImages(db(), { collectionId: collection.id, metadata: { color: 'red' }, limit: 10 });
        expect(byColor.items.map((i) => i.id)).toEqual([red.image.id]);
        const byTag = await listImages(db(), { collectionId: collection.id, metadata: { tags: ['a'] }, limit: 10 });
        expect(byTag.items.length).toBe(2);
        const ready = await listImages(db(), { collectionId: collection.id, status: 'ready', limit: 10 });
        expect(ready.items.map((i) => i.id)).toEqual([red.image.id]);
        expect(await countImagesByStatus(db(), collection.id)).toEqual({ ready: 1, pending: 1 });
        const byId = await imagesByIds(db(), collection.id, [red.image.id, 'not-a-uuid', '00000000-0000-4000-8000-000000000000']);
        expect([...byId.keys()]).toEqual([red.image.id]);
        expect(byId.get(red.image.id)?.status).toBe('ready');
      } finally {
        await cleanup();
      }
    });

    it('cursor pagination visits every live image once, also images created in the same transaction', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        const ids = new Set<string>();
        // One transaction: these share created_at, so only the id breaks the tie.
        await db().transaction(async (tx) => {
          for (let i = 0; i < 7; i++) ids.add((await insertImage(tx, newImage(collection.id))).image.id);
        });
        for (let i = 0; i < 10; i++) ids.add((await insertImage(db(), newImage(collection.id))).image.id);
        const gone = (await insertImage(db(), newImage(collection.id))).image.id;
        await deleteImage(db(), gone);

        const seen: Image[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await listImages(db(), { collectionId: collection.id, limit: 3, cursor });
          seen.push(...page.items);
          cursor = page.nextCursor ?? undefined;
          pages++;
        } while (cursor && pages < 20);
        const seenIds = seen.map((i) => i.id);
        expect(seenIds.length, JSON.stringify(seenIds)).toBe(ids.size);
        expect(new Set(seenIds)).toEqual(ids);
        expect(pages).toBe(6);
      } finally {
        await cleanup();
      }
    });

    it('a cursor it did not make is refused', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        for (const cursor of ['nonsense', Buffer.from('["2020-01-01", "x"]').toString('base64url'), Buffer.from('[1,2]').toString('base64url')]) {
          await expect(listImages(db(), { collectionId: collection.id, limit: 3, cursor }), cursor).rejects.toBeInstanceOf(InvalidCursor);
        }
      } finally {
        await cleanup();
      }
    });
  });
});

import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eq, TransactionRollbackError } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { Conflict, NotFound } from '../../src/db/errors.ts';
import { createCollection, deleteCollection, getCollection, listCollections } from '../../src/db/queries/collections.ts';
import { getActiveModel, getModel, listModels, registerModel, setActiveModel, type NewModel } from '../../src/db/queries/models.ts';
import { models } from '../../src/db/schema/index.ts';
import type { Db } from '../../src/db/client.ts';
import { registerBundle, verifiedBundlePath } from '../../src/models/registry.ts';
import { bundleCopy } from '../inference/helpers.ts';
import { dbModes, ownCollection, suffix, useDatabase } from './modes.ts';

const bundle = (name: string, checksum = randomUUID()): NewModel => ({
  name,
  version: '2',
  family: 'blip',
  path: `/bundles/${name}`,
  checksum,
  embedDim: 8,
  manifest: { name },
});

async function withModels<T>(db: Db, ids: string[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    for (const id of ids) await db.delete(models).where(eq(models.id, id));
  }
}

describe.each(dbModes)('models and collections, $mode', (m) => {
  describe.skipIf(m.skip)('models and collections', () => {
    const database = useDatabase(m);
    const db = () => database().db;

    it('registering the same bundle twice is one model', async () => {
      const b = bundle(`reg-${suffix()}`);
      await withModels(db(), [`${b.name}@2`], async () => {
        const first = await registerModel(db(), b);
        const second = await registerModel(db(), b);
        expect(first.created).toBe(true);
        expect(second.created).toBe(false);
        expect(second.model).toEqual(first.model);
        expect(first.model.id).toBe(`${b.name}@2`);
        expect((await listModels(db())).map((x) => x.id)).toContain(first.model.id);
        expect(await getModel(db(), first.model.id)).toEqual(first.model);
      });
    });

    it('the same bundle bytes from a new folder move the record only when the recorded folder is gone', async () => {
      const name = `moved-${suffix()}`;
      const a = await bundleCopy((mf) => Object.assign(mf, { name, version: '1' }));
      const b = await bundleCopy((mf) => Object.assign(mf, { name, version: '1' }));
      await withModels(db(), [`${name}@1`], async () => {
        try {
          expect((await registerBundle(db(), a.dir)).model.path).toBe(a.dir);
          expect((await registerBundle(db(), b.dir)).model.path, 'the first folder still holds it').toBe(a.dir);
          await a.cleanup();
          const moved = await registerBundle(db(), b.dir);
          expect(moved).toMatchObject({ created: false, model: { path: b.dir } });
          expect((await getModel(db(), `${name}@1`))?.path).toBe(b.dir);
        } finally {
          await Promise.all([a.cleanup(), b.cleanup()]);
        }
      });
    });

    it('a registered bundle whose files changed in place is refused when it is loaded', async () => {
      const name = `inplace-${suffix()}`;
      const a = await bundleCopy((mf) => Object.assign(mf, { name, version: '1' }));
      await withModels(db(), [`${name}@1`], async () => {
        try {
          const { model } = await registerBundle(db(), a.dir);
          expect(await verifiedBundlePath(model)).toBe(a.dir);
          const manifest = join(a.dir, 'manifest.json');
          await writeFile(manifest, `${await readFile(manifest, 'utf8')}\n`); // one byte more: other files
          await expect(verifiedBundlePath(model)).rejects.toThrow(new RegExp(`model ${name}@1: the files at .* changed since it was registered`));
          await a.cleanup();
          await expect(verifiedBundlePath(model)).rejects.toThrow(/no readable bundle/);
        } finally {
          await a.cleanup();
        }
      });
    });

    it('a different checksum under a registered name@version is a Conflict and changes nothing', async () => {
      const b = bundle(`sum-${suffix()}`);
      await withModels(db(), [`${b.name}@2`], async () => {
        await registerModel(db(), b);
        const err = await registerModel(db(), { ...b, checksum: 'changed' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Conflict);
        expect(String(err)).toMatch(/new version/);
        expect((await getModel(db(), `${b.name}@2`))?.checksum).toBe(b.checksum);
      });
    });

    it('one model is active at a time', async () => {
      const a = bundle(`act-a-${suffix()}`);
      const b = bundle(`act-b-${suffix()}`);
      await withModels(db(), [`${a.name}@2`, `${b.name}@2`], async () => {
        await registerModel(db(), a);
        await registerModel(db(), b);
        // In a transaction that is rolled back: the active model is global, and others share this database.
        await db()
          .transaction(async (tx) => {
            await setActiveModel(tx, `${a.name}@2`);
            expect((await getActiveModel(tx))?.id).toBe(`${a.name}@2`);
            await setActiveModel(tx, `${b.name}@2`);
            const active = (await listModels(tx)).filter((x) => x.active).map((x) => x.id);
            expect(active).toEqual([`${b.name}@2`]);
            await expect(setActiveModel(tx, 'no-such@1')).rejects.toBeInstanceOf(NotFound);
            expect((await getActiveModel(tx))?.id, 'an unknown id leaves the active model alone').toBe(`${b.name}@2`);
            tx.rollback();
          })
          .catch((e: unknown) => {
            if (!(e instanceof TransactionRollbackError)) throw e;
          });
      });
    });

    it('collections take their dim from the embedder and are found by id or name', async () => {
      const { collection, model, cleanup } = await ownCollection(db(), 12);
      try {
        expect(collection.dim).toBe(12);
        expect(collection).toMatchObject({ embedder: model.id, hnswM: 16, hnswEfConstruction: 200, hnswEfSearch: 64 });
        expect(await getCollection(db(), { id: collection.id })).toEqual(collection);
        expect(await getCollection(db(), { name: collection.name })).toEqual(collection);
        expect(await getCollection(db(), { id: 'not-a-uuid' })).toBeUndefined();
        expect((await listCollections(db())).map((c) => c.id)).toContain(collection.id);
      } finally {
        await cleanup();
      }
    });

    it('a taken collection name is a Conflict; an unknown model is NotFound', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        await expect(createCollection(db(), { name: collection.name, embedder: model.id })).rejects.toBeInstanceOf(Conflict);
        await expect(createCollection(db(), { name: `x-${suffix()}`, embedder: 'no-such@1' })).rejects.toBeInstanceOf(NotFound);
        await expect(createCollection(db(), { name: `x-${suffix()}`, embedder: model.id, reranker: 'no-such@1' })).rejects.toBeInstanceOf(NotFound);
      } finally {
        await cleanup();
      }
    });

    it('deleting a collection removes it once', async () => {
      const { collection, cleanup } = await ownCollection(db());
      try {
        expect(await deleteCollection(db(), collection.id)).toEqual({ collection, images: [] });
        expect(await deleteCollection(db(), collection.id)).toBeUndefined();
        expect(await getCollection(db(), { id: collection.id })).toBeUndefined();
      } finally {
        await cleanup();
      }
    });
  });
});

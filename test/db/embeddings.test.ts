import { describe, expect, it } from 'vitest';
import {
  countLiveEmbeddings,
  imagesForLabels,
  insertEmbedding,
  insertEmbeddings,
  labelsForImages,
  lastChangeSeq,
  vectorsForLabels,
} from '../../src/db/queries/embeddings.ts';
import { readChanges, type ChangePage } from '../../src/index/changes.ts';
import { deleteImage, insertImage } from '../../src/db/queries/images.ts';
import type { Db } from '../../src/db/client.ts';
import { dbModes, newImage, ownCollection, useDatabase } from './modes.ts';

const vec = (seed: number) => new Float32Array([seed, seed + 0.5, -seed, 1 / (seed + 1)]);

/** What an index holds after applying a page (adds, then deletes): label to image id. */
async function apply(db: Db, page: ChangePage, into: Map<number, string>): Promise<void> {
  const owners = await imagesForLabels(db, page.adds.map((a) => a.label));
  for (const a of page.adds) into.set(a.label, owners.get(a.label) ?? '(deleted since)');
  for (const d of page.deletes) into.delete(d.label);
}

/** The highest number a page accounts for: its `complete` bound, or its last add or delete. */
function lastOf(page: ChangePage, after: number): number {
  if (Number.isFinite(page.complete)) return page.complete;
  return Math.max(after, ...page.adds.map((a) => a.label), ...page.deletes.map((d) => d.deletedSeq));
}

async function follow(db: Db, scope: { collectionId: string; modelId: string }, after: number, limit: number) {
  const state = new Map<number, string>();
  let last = after;
  for (;;) {
    const page = await readChanges(db, { ...scope, after: last, limit });
    if (page.adds.length === 0 && page.deletes.length === 0) return { state, last };
    await apply(db, page, state);
    last = lastOf(page, last);
  }
}

describe.each(dbModes)('embeddings, $mode', (m) => {
  describe.skipIf(m.skip)('embeddings', () => {
    const database = useDatabase(m);
    const db = () => database().db;

    it('a second insert for the same image and model returns the first label', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const { image } = await insertImage(db(), newImage(collection.id));
        const scope = { collectionId: collection.id, modelId: model.id };
        const first = await insertEmbedding(db(), { ...scope, imageId: image.id, vector: vec(1) });
        const second = await insertEmbedding(db(), { ...scope, imageId: image.id, vector: vec(2) });
        expect(first?.created).toBe(true);
        expect(second).toEqual({ label: first!.label, created: false });
        const concurrent = await Promise.all(Array.from({ length: 8 }, () => insertEmbedding(db(), { ...scope, imageId: image.id, vector: vec(3) })));
        expect(new Set(concurrent.map((s) => s?.label))).toEqual(new Set([first!.label]));
        expect(await countLiveEmbeddings(db(), scope)).toBe(1);
        expect(Array.from((await vectorsForLabels(db(), [first!.label])).get(first!.label)!)).toEqual(Array.from(vec(1)));
      } finally {
        await cleanup();
      }
    });

    it('a batch gets one label per image, in input order, and nothing for deleted images', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const scope = { collectionId: collection.id, modelId: model.id };
        const imgs = await Promise.all(Array.from({ length: 4 }, () => insertImage(db(), newImage(collection.id)).then((r) => r.image)));
        await deleteImage(db(), imgs[3]!.id);
        const stored = await insertEmbeddings(db(), { ...scope, items: [...imgs, imgs[0]!].map((img, i) => ({ imageId: img.id, vector: vec(i) })) });
        expect(stored[3], 'deleted image').toBeUndefined();
        expect(stored[4]).toEqual({ label: stored[0]!.label, created: false });
        expect(new Set(stored.slice(0, 3).map((s) => s!.label)).size).toBe(3);
        const labels = await labelsForImages(db(), { modelId: model.id, imageIds: imgs.map((i) => i.id) });
        expect([...labels.keys()].sort()).toEqual(imgs.slice(0, 3).map((i) => i.id).sort());
        const back = await imagesForLabels(db(), [...labels.values()]);
        for (const [imageId, label] of labels) expect(back.get(label)).toBe(imageId);
      } finally {
        await cleanup();
      }
    });

    it('a vector of the wrong length is refused', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const { image } = await insertImage(db(), newImage(collection.id));
        await expect(insertEmbedding(db(), { collectionId: collection.id, modelId: model.id, imageId: image.id, vector: new Float32Array(3) })).rejects.toThrow(RangeError);
      } finally {
        await cleanup();
      }
    });

    it('a soft delete numbers the embedding with deleted_seq, and the change stream carries the delete', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const scope = { collectionId: collection.id, modelId: model.id };
        const { image } = await insertImage(db(), newImage(collection.id));
        const { label } = (await insertEmbedding(db(), { ...scope, imageId: image.id, vector: vec(1) }))!;
        const before = await lastChangeSeq(db(), scope);
        expect(before).toBe(label);
        await deleteImage(db(), image.id);
        const after = await lastChangeSeq(db(), scope);
        expect(after).toBeGreaterThan(label);

        const all = await readChanges(db(), { ...scope, after: 0, limit: 10 });
        expect(all.adds).toEqual([]); // the row is no longer live
        expect(all.deletes).toEqual([{ label, deletedSeq: after }]);
        const fromAdd = await readChanges(db(), { ...scope, after: label, limit: 10 });
        expect(fromAdd.deletes.map((d) => d.label)).toEqual([label]);
        const none = await readChanges(db(), { ...scope, after, limit: 10 });
        expect([none.adds, none.deletes]).toEqual([[], []]);
        expect(await imagesForLabels(db(), [label])).toEqual(new Map());
        expect(await countLiveEmbeddings(db(), scope)).toBe(0);
      } finally {
        await cleanup();
      }
    });

    it('replaying in small pages gives the same state as Postgres, with every seq once and in order', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const scope = { collectionId: collection.id, modelId: model.id };
        const imgs = [];
        for (let i = 0; i < 12; i++) imgs.push((await insertImage(db(), newImage(collection.id))).image);
        await insertEmbeddings(db(), { ...scope, items: imgs.slice(0, 6).map((img, i) => ({ imageId: img.id, vector: vec(i) })) });
        for (const img of imgs.slice(0, 12).filter((_, i) => i % 3 === 0)) await deleteImage(db(), img.id);
        await insertEmbeddings(db(), { ...scope, items: imgs.slice(6).map((img, i) => ({ imageId: img.id, vector: vec(i) })) });

        const one = await readChanges(db(), { ...scope, after: 0, limit: 1000 });
        for (const seqs of [one.adds.map((a) => a.label), one.deletes.map((d) => d.deletedSeq)]) {
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
          expect(new Set(seqs).size).toBe(seqs.length);
        }
        expect(one.adds).toHaveLength(8); // 12 embedded, 4 deleted

        const { state, last } = await follow(db(), scope, 0, 2);
        expect(last).toBe(await lastChangeSeq(db(), scope));
        const live = await labelsForImages(db(), { modelId: model.id, imageIds: imgs.map((i) => i.id) });
        expect(state).toEqual(new Map([...live].map(([imageId, label]) => [label, imageId])));
      } finally {
        await cleanup();
      }
    });

    it('a follower that reads while writers add and delete ends with exactly the live rows', async () => {
      const { collection, model, cleanup } = await ownCollection(db());
      try {
        const scope = { collectionId: collection.id, modelId: model.id };
        const writers = Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; i < 10; i++) {
            const { image } = await insertImage(db(), newImage(collection.id));
            await insertEmbedding(db(), { ...scope, imageId: image.id, vector: vec(w * 100 + i) });
            if (i % 4 === 1) await deleteImage(db(), image.id);
          }
        });
        let done = false;
        const state = new Map<number, string>();
        let last = 0;
        const follower = (async () => {
          for (;;) {
            const finished = done;
            const page = await readChanges(db(), { ...scope, after: last, limit: 3 });
            await apply(db(), page, state);
            if (page.adds.length || page.deletes.length) last = lastOf(page, last);
            else if (finished) return;
          }
        })();
        await Promise.all(writers);
        done = true;
        await follower;
        const live = await imagesForLabels(db(), (await readChanges(db(), { ...scope, after: 0, limit: 1000 })).adds.map((a) => a.label));
        expect(state).toEqual(live);
        expect(state.size).toBe(await countLiveEmbeddings(db(), scope));
      } finally {
        await cleanup();
      }
    });
  });
});

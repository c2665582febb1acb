import { describe, expect, it } from 'vitest';
import {
  changesSince,
  countLiveEmbeddings,
  imagesForLabels,
  insertEmbedding,
  insertEmbeddings,
  labelsForImages,
  lastChangeSeq,
  vectorsForLabels,
  type Change,
} from '../../src/db/queries/embeddings.ts';
import { deleteImage, insertImage } from '../../src/db/queries/images.ts';
import type { Db } from '../../src/db/client.ts';
import { dbModes, newImage, ownCollection, useDatabase } from './modes.ts';

const vec = (seed: number) => new Float32Array([seed, seed + 0.5, -seed, 1 / (seed + 1)]);

/** What an index holds after applying the changes in order: label to image id. */
function replay(changes: Change[], into = new Map<number, string>()): Map<number, string> {
  for (const c of changes) {
    if (c.kind === 'add') into.set(c.label, c.imageId);
    else into.delete(c.label);
  }
  return into;
}

async function follow(db: Db, scope: { collectionId: string; modelId: string }, after: number, limit: number) {
  const state = new Map<number, string>();
  let last = after;
  for (;;) {
    const page = await changesSince(db, { ...scope, after: last, limit });
    if (page.length === 0) return { state, last };
    replay(page, state);
    last = page[page.length - 1]!.seq;
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

    it('a soft delete numbers the embedding with deleted_seq, and changesSince replays add then delete', async () => {
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

        const all = await changesSince(db(), { ...scope, after: 0, limit: 10 });
        expect(all.map((c) => [c.kind, c.label, c.seq])).toEqual([
          ['add', label, label],
          ['delete', label, after],
        ]);
        const fromAdd = await changesSince(db(), { ...scope, after: label, limit: 10 });
        expect(fromAdd.map((c) => c.kind)).toEqual(['delete']);
        expect(await changesSince(db(), { ...scope, after, limit: 10 })).toEqual([]);
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

        const one = await changesSince(db(), { ...scope, after: 0, limit: 1000 });
        const seqs = one.map((c) => c.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);

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
            const page = await changesSince(db(), { ...scope, after: last, limit: 3 });
            replay(page, state);
            if (page.length) last = page[page.length - 1]!.seq;
            else if (finished) return;
          }
        })();
        await Promise.all(writers);
        done = true;
        await follower;
        const live = await imagesForLabels(db(), [...(await changesSince(db(), { ...scope, after: 0, limit: 1000 }))].map((c) => c.label));
        expect(state).toEqual(live);
        expect(state.size).toBe(await countLiveEmbeddings(db(), scope));
      } finally {
        await cleanup();
      }
    });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotFound } from '../../src/db/errors.ts';
import { insertImage } from '../../src/db/queries/images.ts';
import { RecomputedTokens, StoredTokens, TokenFeatureStore, tokenSource } from '../../src/features/store.ts';
import { roundToHalf } from '../../src/features/fp16.ts';
import { Runtime } from '../../src/inference/runtime.ts';
import { LocalBlobStore } from '../../src/storage/blob.ts';
import { dbModes, ownCollection, useDatabase } from '../db/modes.ts';
import { maxAbsDiff, TINY_BLIP } from '../inference/helpers.ts';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await Runtime.open(TINY_BLIP, { threads: 1, intraOpThreads: 1, maxWaitMs: 1 });
});
afterAll(() => runtime?.close());

const tokens = (n: number, seed: number) => new Float32Array(n).map((_, i) => Math.sin(i * 0.91 + seed) * 3);

describe('token-feature store', () => {
  let dir: string;
  let store: TokenFeatureStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mira-features-'));
    store = await TokenFeatureStore.open(dir);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('returns what was put, rounded to fp16, in the order asked, and undefined for what was not', async () => {
    const a = tokens(17 * 24, 1);
    const b = tokens(17 * 24, 2);
    await store.put('m@1', 'img-a', a);
    await store.put('m@1', 'img-b', b);
    const [gotB, none, gotA] = store.getMany('m@1', ['img-b', 'img-none', 'img-a']);
    expect(none).toBeUndefined();
    expect(Array.from(gotA!)).toEqual(Array.from(a, roundToHalf));
    expect(Array.from(gotB!)).toEqual(Array.from(b, roundToHalf));
    expect(maxAbsDiff(gotA!, a)).toBeLessThanOrEqual(3 * 2 ** -11);
  });

  it('keeps models apart, deletes, and persists across reopening', async () => {
    await store.put('m@1', 'img', tokens(8, 1));
    await store.put('m@2', 'img', tokens(8, 2));
    expect(await store.delete('m@1', 'img')).toBe(true);
    expect(store.getMany('m@1', ['img'])).toEqual([undefined]);
    await store.close();
    store = await TokenFeatureStore.open(dir);
    expect(Array.from(store.getMany('m@2', ['img'])[0]!)).toEqual(Array.from(tokens(8, 2), roundToHalf));
  });
});

describe.each(dbModes)('token sources on the tiny bundle, $mode', (m) => {
  describe.skipIf(m.skip)('token sources', () => {
    const database = useDatabase(m);
    let dir: string;
    let store: TokenFeatureStore;
    let blobs: LocalBlobStore;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'mira-tokens-'));
      store = await TokenFeatureStore.open(join(dir, 'features'));
      blobs = new LocalBlobStore(join(dir, 'blobs'));
    });
    afterAll(async () => {
      await store?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Real images: PNGs in the blob store and rows in the collection. */
    async function images(collectionId: string, colors: [number, number, number][]) {
      const out: { id: string; png: Buffer }[] = [];
      for (const [r, g, b] of colors) {
        const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r, g, b } } }).png().toBuffer();
        const { key } = await blobs.put(png, 'original');
        const { image } = await insertImage(database().db, { collectionId, sha256: key, source: 'upload:t.png', mime: 'image/png', width: 40, height: 30, bytes: png.length });
        out.push({ id: image.id, png });
      }
      return out;
    }

    it('recompute runs the vision graph on the originals; store falls back to it, writes back, then serves the fp16 copy', async () => {
      const { collection, cleanup } = await ownCollection(database().db);
      try {
        const imgs = await images(collection.id, [[255, 0, 0], [0, 90, 200], [20, 200, 20]]);
        const ids = imgs.map((i) => i.id);
        const deps = { db: database().db, blobs, runtime: async () => runtime, features: store };
        const expected = (await runtime.embedImages(imgs.map((i) => i.png))).map((e) => e.tokens!);
        const { count, dim } = runtime.manifest.imageTokens!;

        const recomputed = await new RecomputedTokens(deps).tokensFor(runtime.id, ids);
        recomputed.forEach((t, i) => {
          expect(t.length).toBe(count * dim);
          expect(maxAbsDiff(t, expected[i]!)).toBeLessThan(1e-5);
        });

        const stored = tokenSource('store', deps);
        expect(stored).toBeInstanceOf(StoredTokens);
        expect(tokenSource('recompute', deps)).toBeInstanceOf(RecomputedTokens);
        expect(store.getMany(runtime.id, ids).every((t) => t === undefined)).toBe(true);
        const first = await stored.tokensFor(runtime.id, ids);
        expect(store.getMany(runtime.id, ids).every((t) => t !== undefined), 'written back').toBe(true);
        const second = await stored.tokensFor(runtime.id, ids);
        second.forEach((t, i) => {
          expect(Array.from(t)).toEqual(Array.from(expected[i]!, roundToHalf));
          expect(maxAbsDiff(t, first[i]!)).toBeLessThan(1e-2);
        });

        // What the fp16 copy does to the score re-ranking uses.
        const fromStore = await runtime.itmScores('a red square', second);
        const fromRecompute = await runtime.itmScores('a red square', recomputed);
        fromStore.forEach((s, i) => expect(Math.abs(s.logit - fromRecompute[i]!.logit)).toBeLessThan(1e-2));
      } finally {
        await cleanup();
      }
    });

    it('an image whose original is gone fails with NotFound naming it', async () => {
      const { collection, cleanup } = await ownCollection(database().db);
      try {
        const [img] = await images(collection.id, [[1, 2, 3]]);
        const source = new RecomputedTokens({ db: database().db, blobs: new LocalBlobStore(join(dir, 'empty')), runtime: async () => runtime });
        const err = await source.tokensFor(runtime.id, [img!.id]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NotFound);
        expect(String(err)).toContain(img!.id);
      } finally {
        await cleanup();
      }
    });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedLabels, EXACT_MAX_ALLOWED, VectorIndex } from '../../src/index/index.ts';
import { addVectors, bruteForce, deleteImages, modes, ownCollection, unitVectors, useDatabase, useTempDirs, type Owned } from './helpers.ts';

const N = 2400;
const DIM = 16;
/** 1 in 100 is rare (24 images); bucket b holds 2 in 3 (1600, over the exact-search cutoff). */
const metadata = (i: number) => ({ shard: i % 100 === 0 ? 'rare' : 'common', bucket: i % 3 === 0 ? 'a' : 'b', tags: i % 7 === 0 ? ['seven'] : [] });

describe.each(modes)('filtered search returns k results when k matching images exist, $mode', (m) => {
  const tempDir = useTempDirs();
  const db = useDatabase(m, tempDir);
  let own: Owned;
  let ix: VectorIndex;
  let byLabel: Map<number, Float32Array>;
  let meta: Map<number, ReturnType<typeof metadata>>;
  let imageOf: Map<number, string>;
  const queries = unitVectors(20, DIM, 777);

  beforeAll(async () => {
    if (m.skip) return;
    own = await ownCollection(db(), DIM, { hnswM: 8, hnswEfConstruction: 64 });
    const vectors = unitVectors(N, DIM, 41);
    const { labels, imageIds } = await addVectors(db(), own, vectors, metadata);
    imageOf = new Map(labels.map((l, i) => [l, imageIds[i]!]));
    byLabel = new Map(labels.map((l, i) => [l, vectors[i]!]));
    meta = new Map(labels.map((l, i) => [l, metadata(i)]));
    ix = await VectorIndex.open({ db: db(), dataDir: await tempDir(), collectionId: own.collectionId, modelId: own.modelId });
  });
  afterAll(async () => {
    await ix?.close({ save: false });
    await own?.cleanup();
  });

  const exactAmong = (q: Float32Array, keep: (l: number) => boolean, k: number) =>
    bruteForce(q, new Map([...byLabel].filter(([l]) => keep(l))), k);

  it.skipIf(m.skip)('resolves a metadata filter to the labels of matching live images (jsonb containment)', async () => {
    const rare = await allowedLabels(db(), own.collectionId, own.modelId, { shard: 'rare' });
    expect(rare.size).toBe(24);
    const sevens = await allowedLabels(db(), own.collectionId, own.modelId, { tags: ['seven'], bucket: 'a' });
    expect([...sevens].sort()).toEqual([...meta].filter(([, v]) => v.tags.length && v.bucket === 'a').map(([l]) => l).sort());
  });

  it.skipIf(m.skip)('a selective filter (24 of 2400) gives exactly k, the true nearest among the matches', async () => {
    const rare = await allowedLabels(db(), own.collectionId, own.modelId, { shard: 'rare' });
    for (const q of queries.slice(0, 5)) {
      const hits = ix.search(q, 10, { allowedLabels: rare });
      expect(hits.map((h) => h.label)).toEqual(exactAmong(q, (l) => rare.has(l), 10));
    }
    expect(ix.search(queries[0]!, 50, { allowedLabels: rare }), 'k above the matches gives all matches').toHaveLength(24);
  });

  it.skipIf(m.skip)('a broad filter (1600 of 2400) walks the graph and still gives k matching hits', async () => {
    const b = await allowedLabels(db(), own.collectionId, own.modelId, { bucket: 'b' });
    expect(b.size).toBeGreaterThan(EXACT_MAX_ALLOWED);
    let overlap = 0;
    for (const q of queries) {
      const hits = ix.search(q, 10, { allowedLabels: b, ef: 64 });
      expect(hits).toHaveLength(10);
      for (const h of hits) expect(b.has(h.label), `label ${h.label} is not in bucket b`).toBe(true);
      const truth = new Set(exactAmong(q, (l) => b.has(l), 10));
      overlap += hits.filter((h) => truth.has(h.label)).length;
    }
    expect(overlap / (queries.length * 10), 'recall@10 of the filtered walk').toBeGreaterThan(0.9);
    // Asking for every match: the walk alone may come up short, the exact fallback may not.
    expect(ix.search(queries[3]!, b.size, { allowedLabels: b, ef: 16 })).toHaveLength(b.size);
  });

  it.skipIf(m.skip)('a filter callback matching three images returns those three, best first', () => {
    const three = new Set([...byLabel.keys()].filter((_, i) => i % 800 === 5));
    const hits = ix.search(queries[1]!, 10, { filter: (l) => three.has(l) });
    expect(hits.map((h) => h.label)).toEqual(exactAmong(queries[1]!, (l) => three.has(l), 10));
  });

  it.skipIf(m.skip)('scores are cosine similarities, best first', () => {
    const [top, second] = ix.search(queries[2]!, 2);
    const truth = bruteForce(queries[2]!, byLabel, 1)[0]!;
    const cos = byLabel.get(truth)!.reduce((s, x, i) => s + x * queries[2]![i]!, 0);
    expect(top!.label).toBe(truth);
    expect(top!.score).toBeCloseTo(cos, 4);
    expect(top!.score).toBeGreaterThanOrEqual(second!.score);
  });

  it.skipIf(m.skip)('a stale allowed set never brings back a deleted image', async () => {
    const rare = await allowedLabels(db(), own.collectionId, own.modelId, { shard: 'rare' });
    const [victim] = [...rare];
    await deleteImages(db(), [imageOf.get(victim!)!]);
    await ix.sync();
    const hits = ix.search(byLabel.get(victim!)!, 30, { allowedLabels: rare });
    expect(hits.map((h) => h.label)).not.toContain(victim);
    expect(hits).toHaveLength(23);
    expect((await allowedLabels(db(), own.collectionId, own.modelId, { shard: 'rare' })).has(victim!)).toBe(false);
  });
});

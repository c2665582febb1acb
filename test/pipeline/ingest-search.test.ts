import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countLiveEmbeddings } from '../../src/db/queries/embeddings.ts';
import { countImagesByStatus, deleteImage, getImage } from '../../src/db/queries/images.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { isIngestError } from '../../src/ingest/errors.ts';
import { isInferenceError } from '../../src/inference/errors.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { LM_WEIGHT } from '../../src/search/score.ts';
import { search } from '../../src/search/search.ts';
import { ensureCollection } from '../../src/cli/collection.ts';
import { deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { eventually, modes, testContext, uniqueName, type TestContext } from '../support/context.ts';
import { makeImageCorpus } from '../fixtures/hostile/make.ts';

const N = 24;

describe.each(modes)('ingest and search (%s mode)', (mode) => {
  let t: TestContext;
  let sceneBytes: Buffer[];
  let collectionId: string;
  let embedder: string;
  const ids: string[] = [];

  beforeAll(async () => {
    t = await testContext(mode);
    const records = sampleScenes(21, N);
    sceneBytes = await Promise.all(records.map((r) => renderScene(r.scene, { size: 64, layout: r.layout })));
    const collection = await ensureCollection(t.ctx, uniqueName('pipeline'));
    collectionId = collection.id;
    embedder = collection.embedder;
    for (const [i, bytes] of sceneBytes.entries()) {
      const r = await ingestImage(t.ctx, collection, { kind: 'upload', bytes, filename: `scene-${i}.png`, metadata: { parity: i % 2 ? 'odd' : 'even', i } });
      expect(r.created).toBe(true);
      ids.push(r.imageId);
    }
  }, 120_000);
  afterAll(async () => {
    if (t && collectionId) await deleteCollection(t.ctx.db, collectionId);
    await t?.stop();
  });

  const collection = async () => (await getCollection(t.ctx.db, { id: collectionId }))!;

  it('extracts every image: rows, labels and index entries agree', async () => {
    await eventually('all images ready', async () => ((await countImagesByStatus(t.ctx.db, collectionId)).ready === N ? true : undefined), 60_000);
    expect(await countLiveEmbeddings(t.ctx.db, { collectionId, modelId: embedder })).toBe(N);
    const index = await t.ctx.indexes.get(collectionId, embedder);
    await eventually('index caught up', async () => (await index.sync(), index.stats().count === N ? true : undefined));
  });

  it('the same bytes again give the same image and change nothing', async () => {
    const coll = { id: collectionId };
    const again = await ingestImage(t.ctx, coll, { kind: 'upload', bytes: sceneBytes[3]!, filename: 'again.png' });
    expect(again).toMatchObject({ imageId: ids[3], created: false });
    expect(await countLiveEmbeddings(t.ctx.db, { collectionId, modelId: embedder })).toBe(N);
  });

  it('text search returns k hits with ITC, ITM and LM scores, best first', async () => {
    const text = 'a small red circle';
    const r = await search(t.ctx, { collection: await collection(), query: { text }, k: 5 });
    expect(r).toMatchObject({ reranked: true, rerankRule: 'itm+lm' });
    expect(r.hits).toHaveLength(5);
    // The itm+lm rule, recomputed here from the runtime and the stored token features.
    const rt = await t.ctx.runtime(embedder);
    const tokens = await t.ctx.tokens.tokensFor(embedder, r.hits.map((h) => h.image.id));
    const itm = await rt.itmScores(text, tokens);
    const lm = await rt.captionLogLikelihoods(tokens.map(() => text), tokens);
    const [q] = await rt.embedTexts([text]);
    const embedded = await rt.embedImages(r.hits.map((h) => sceneBytes[ids.indexOf(h.image.id)]!));
    r.hits.forEach((h, i) => {
      const itc = embedded[i]!.feat.reduce((s, v, j) => s + v * q![j]!, 0);
      expect(h.itcScore).toBeCloseTo(itc, 4);
      expect(h.itmScore).toBeCloseTo(itm[i]!.prob, 5);
      expect(h.lmScore).toBeCloseTo(lm[i]!, 4);
      expect(h.score).toBeCloseTo(itm[i]!.logit + itc + LM_WEIGHT * lm[i]!, 4);
    });
    const scores = r.hits.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);

    // BLIP's rule, when asked for: ITM logit + ITC cosine.
    const blip = await search(t.ctx, { collection: await collection(), query: { text }, k: 5, rerank: { rule: 'itm' } });
    expect(blip.rerankRule).toBe('itm');
    for (const h of blip.hits) {
      const i = r.hits.findIndex((x) => x.image.id === h.image.id);
      if (i >= 0) expect(h.score).toBeCloseTo(itm[i]!.logit + r.hits[i]!.itcScore, 4);
      expect(h.lmScore).toBeUndefined();
    }
  });

  it('a metadata filter returns k hits when k matching images exist', async () => {
    const r = await search(t.ctx, { collection: await collection(), query: { text: 'a blue square' }, k: 12, filter: { parity: 'odd' }, rerank: { enabled: false } });
    expect(r.hits).toHaveLength(12);
    expect(r.hits.every((h) => (h.image.metadata as { parity: string }).parity === 'odd')).toBe(true);
  });

  it('bad input is refused with its code and leaves no row, blob or job behind', async () => {
    const before = await countImagesByStatus(t.ctx.db, collectionId);
    const blobFiles = async () => (await readdir(join(t.ctx.dataDir, 'blobs'), { recursive: true })).length;
    const blobsBefore = await blobFiles();
    const truncated = sceneBytes[0]!.subarray(0, sceneBytes[0]!.length / 2);
    for (const [bytes, code] of [[Buffer.alloc(0), 'image_empty'], [Buffer.from('not an image at all'), 'image_unsupported'], [truncated, 'image_corrupt']] as const) {
      const err = await ingestImage(t.ctx, { id: collectionId }, { kind: 'upload', bytes, filename: 'bad.png' }).catch((e) => e);
      expect(isInferenceError(err, code) || isIngestError(err), String(err)).toBe(true);
      expect((err as { code: string }).code).toBe(code);
    }
    expect(await countImagesByStatus(t.ctx.db, collectionId)).toEqual(before);
    expect(await blobFiles()).toBe(blobsBefore);
    expect(Object.values(await t.ctx.queue.depths()).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('a deleted image disappears from search', async () => {
    const first = await search(t.ctx, { collection: await collection(), query: { text: 'a green triangle' }, k: 1, rerank: { enabled: false } });
    const victim = first.hits[0]!.image.id;
    expect(await deleteImage(t.ctx.db, victim)).toBe(true);
    expect(await getImage(t.ctx.db, victim)).toBeUndefined();
    const index = await t.ctx.indexes.get(collectionId, embedder);
    await eventually('delete applied', async () => (await index.sync(), index.stats().count === N - 1 ? true : undefined));
    const after = await search(t.ctx, { collection: await collection(), query: { text: 'a green triangle' }, k: N, rerank: { enabled: false } });
    expect(after.hits.map((h) => h.image.id)).not.toContain(victim);
    expect(after.hits).toHaveLength(N - 1);
  });
});

describe.each(modes)('the hostile corpus through the whole pipeline (%s mode)', (mode) => {
  let t: TestContext | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('each file gets its documented outcome; refused ones leave no row, blob or job', async () => {
    t = await testContext(mode);
    dir = await mkdtemp(join(tmpdir(), 'mira-hostile-'));
    const corpus = await makeImageCorpus(dir);
    const collection = await ensureCollection(t.ctx, uniqueName('hostile'));
    const blobFiles = async () => (await readdir(join(t!.ctx.dataDir, 'blobs'), { recursive: true }).catch(() => [])).length;
    let accepted = 0;
    try {
      for (const item of corpus) {
        // Rows in any status: accepted images move from pending to ready meanwhile.
        const rows = async () => Object.values(await countImagesByStatus(t!.ctx.db, collection.id)).reduce((a, b) => a + b, 0);
        const before = { rows: await rows(), blobs: await blobFiles() };
        const outcome = await ingestImage(t.ctx, collection, { kind: 'upload', bytes: await readFile(item.file), filename: item.name }).then(
          () => 'ok',
          (err: { code?: string }) => err.code ?? String(err),
        );
        expect(outcome, `${item.name}: ${item.why}`).toBe(item.expect);
        if (outcome === 'ok') accepted++;
        else {
          expect(await rows(), item.name).toBe(before.rows);
          expect(await blobFiles(), item.name).toBe(before.blobs);
        }
      }
      await eventually('accepted files extracted', async () => ((await countImagesByStatus(t!.ctx.db, collection.id)).ready === accepted ? true : undefined), 60_000);
    } finally {
      await deleteCollection(t.ctx.db, collection.id);
    }
  }, 120_000);
});

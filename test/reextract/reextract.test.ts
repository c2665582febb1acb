import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCollection, deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { countLiveEmbeddings, labelsForImages, vectorsForLabels } from '../../src/db/queries/embeddings.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { updateJob } from '../../src/db/queries/jobs.ts';
import { ingestImage } from '../../src/ingest/pipeline.ts';
import { startReextraction } from '../../src/reextract/start.ts';
import { deleteVersion, rollbackVersion, versionCounts, VersionError } from '../../src/reextract/versions.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { search } from '../../src/search/search.ts';
import { maxAbsDiff } from '../inference/helpers.ts';
import { eventually, modes, testContext, uniqueName, type TestContext } from '../support/context.ts';
import { finished, queryLoop, twoVersions } from './helpers.ts';

const N = 20;
const DURING = 4;
const K = 5;

describe.each(modes)('re-extraction to a new embedder version (%s mode)', (mode) => {
  let t: TestContext;
  let versions: Awaited<ReturnType<typeof twoVersions>>;
  const collections: string[] = [];
  const bytesOf = new Map<string, Buffer>();

  async function newCollection(n: number, seed: number) {
    const c = await createCollection(t.ctx.db, { name: uniqueName('reextract'), embedder: versions.v1.id, reranker: versions.v1.id });
    collections.push(c.id);
    await ingest(c.id, seed, n);
    await eventually(`${n} images ready`, async () => ((await countImagesByStatus(t.ctx.db, c.id)).ready === n ? true : undefined), 60_000);
    return c;
  }
  async function ingest(collectionId: string, seed: number, n: number) {
    const records = sampleScenes(seed, n);
    for (const [i, r] of records.entries()) {
      const bytes = await renderScene(r.scene, { size: 64, layout: r.layout });
      const res = await ingestImage(t.ctx, { id: collectionId }, { kind: 'upload', bytes, filename: `s${seed}-${i}.png` });
      bytesOf.set(res.imageId, bytes);
    }
  }
  const collection = async (id: string) => (await getCollection(t.ctx.db, { id }))!;

  beforeAll(async () => {
    t = await testContext(mode, { MIRA_CAPTION_ON_INGEST: 'false' });
    versions = await twoVersions(t.ctx);
  }, 120_000);
  afterAll(async () => {
    for (const id of collections) await deleteCollection(t.ctx.db, id);
    await t?.stop();
    await versions?.cleanup();
  });

  it('serves every query from the old version during the job, then switches atomically to the new one', async () => {
    const { v1, v2 } = versions;
    const c = await newCollection(N, 31);
    const loop = queryLoop(t.ctx, c.id, K);
    await eventually('a few queries on the old version', async () => (loop.runs() >= 3 ? true : undefined));
    const started = await startReextraction(t.ctx, c.id, v2.id);
    expect(started.started).toBe(true);
    expect(started.collection, JSON.stringify(started.collection)).toMatchObject({ embedder: v1.id, pendingEmbedder: v2.id, pendingJobId: started.job.id });
    // Ingested while the job runs: they must end up in both versions.
    await ingest(c.id, 32, DURING);
    const { job, collection: after } = await finished(t.ctx, started.job.id);
    const seen = await loop.stop();

    expect(job.state, JSON.stringify(job)).toBe('completed');
    expect(after, JSON.stringify(after)).toMatchObject({ embedder: v2.id, previousEmbedder: v1.id, pendingEmbedder: null, dim: v2.embedDim, reranker: v2.id });
    expect(seen.errors, seen.errors.join('\n')).toEqual([]);
    expect(seen, JSON.stringify(seen)).toMatchObject({ emptyPages: 0, shortPages: 0 });
    expect(seen.runs).toBeGreaterThan(2);
    expect(seen.models[0]).toBe(v1.id);

    await eventually(`${N + DURING} images ready`, async () => ((await countImagesByStatus(t.ctx.db, c.id)).ready === N + DURING ? true : undefined), 60_000);
    for (const modelId of [v1.id, v2.id]) {
      expect(await versionCounts(t.ctx.db, c.id, modelId), modelId).toEqual({ images: N + DURING, labels: N + DURING, missing: 0 });
    }

    // After the switch the results come from the new model: its index, its vectors.
    const r = await search(t.ctx, { collection: after, query: { text: 'a red circle' }, k: K, rerank: { enabled: false } });
    expect(r.model).toBe(v2.id);
    expect(r.hits).toHaveLength(K);
    const rt = await t.ctx.runtime(v2.id);
    const labels = await labelsForImages(t.ctx.db, { modelId: v2.id, imageIds: r.hits.map((h) => h.image.id) });
    const stored = await vectorsForLabels(t.ctx.db, [...labels.values()]);
    for (const h of r.hits) {
      const [fresh] = await rt.embedImages([bytesOf.get(h.image.id)!]);
      const vector = stored.get(labels.get(h.image.id)!)!;
      expect(vector.length).toBe(v2.embedDim);
      expect(maxAbsDiff(vector, fresh!.feat), h.image.id).toBeLessThan(1e-4);
    }
    const index = await t.ctx.indexes.get(c.id, v2.id);
    await eventually('the new index holds every image', async () => (await index.sync(), index.stats().count === N + DURING ? true : undefined));
  }, 240_000);

  it('rolls back in one call, and deleting the active version is refused', async () => {
    const { v1, v2 } = versions;
    const c = collections[0]!;
    const back = await rollbackVersion(t.ctx.db, c);
    expect(back, JSON.stringify(back)).toMatchObject({ embedder: v1.id, previousEmbedder: v2.id, dim: v1.embedDim, reranker: v1.id });
    expect((await search(t.ctx, { collection: back, query: { text: 'a square' }, k: K, rerank: { enabled: false } })).hits).toHaveLength(K);

    const refused = await deleteVersion(t.ctx.db, { collectionId: c, modelId: v1.id }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(VersionError);
    expect((refused as VersionError).code).toBe('version_active');
    expect(await countLiveEmbeddings(t.ctx.db, { collectionId: c, modelId: v1.id })).toBe(N + DURING);

    const { deleted } = await deleteVersion(t.ctx.db, { collectionId: c, modelId: v2.id });
    expect(deleted).toBe(N + DURING);
    expect(await collection(c), 'no rollback target left').toMatchObject({ embedder: v1.id, previousEmbedder: null });
    expect(await countLiveEmbeddings(t.ctx.db, { collectionId: c, modelId: v2.id })).toBe(0);
    const none = await rollbackVersion(t.ctx.db, c).catch((e: unknown) => e);
    expect((none as VersionError).code).toBe('no_previous_version');
  }, 120_000);

  it('a cancel mid-job leaves the old version active and intact; a later job resumes from the shadow rows', async () => {
    const { v1, v2 } = versions;
    const n = 48;
    const c = await newCollection(n, 33);
    const started = await startReextraction(t.ctx, c.id, v2.id);
    // Cancel once the first batch is in the shadow, as the cancel route does.
    await eventually('shadow rows', async () => ((await countLiveEmbeddings(t.ctx.db, { collectionId: c.id, modelId: v2.id })) > 0 ? true : undefined), 60_000, 10);
    await updateJob(t.ctx.db, started.job.id, { state: 'cancelled', error: 'cancelled by request' }, { from: ['queued', 'running'] });
    await t.ctx.queue.cancel(started.job.id);
    await eventually('the job to let go of the collection', async () => ((await collection(c.id)).pendingJobId === null ? true : undefined), 60_000);

    const after = await collection(c.id);
    expect(after, JSON.stringify(after)).toMatchObject({ embedder: v1.id, pendingEmbedder: null, previousEmbedder: null });
    expect(await versionCounts(t.ctx.db, c.id, v1.id)).toEqual({ images: n, labels: n, missing: 0 });
    const shadow = await versionCounts(t.ctx.db, c.id, v2.id);
    // Cancelled after the first batch: some or (when the cancel lands just before the switch) all shadow rows exist.
    expect(shadow.labels, JSON.stringify(shadow)).toBeGreaterThan(0);
    const r = await search(t.ctx, { collection: after, query: { text: 'a circle' }, k: K, rerank: { enabled: false } });
    expect(r).toMatchObject({ model: v1.id });
    expect(r.hits).toHaveLength(K);

    const again = await startReextraction(t.ctx, c.id, v2.id);
    const { job, collection: done } = await finished(t.ctx, again.job.id);
    expect(job.state, JSON.stringify(job)).toBe('completed');
    expect(job.result, JSON.stringify(job.result)).toMatchObject({ switched: true, embedded: n - shadow.labels });
    expect(done.embedder).toBe(v2.id);
  }, 240_000);
});

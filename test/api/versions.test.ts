import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MiraApiError, MiraClient } from '../../sdk/src/index.ts';
import { countImagesByStatus } from '../../src/db/queries/images.ts';
import { setActiveModel, getActiveModel } from '../../src/db/queries/models.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { eventually } from '../support/context.ts';
import { twoVersions } from '../reextract/helpers.ts';
import { problemOf, unique, useServer } from './server.ts';

/**
 * Re-extraction, rollback and version deletion through the HTTP API and the SDK (service mode
 * with BullMQ when DATABASE_URL and REDIS_URL are set, embedded otherwise).
 */
const server = useServer({ MIRA_CAPTION_ON_INGEST: 'false' });
const data = MiraClient.data;
const N = 8;

let versions: Awaited<ReturnType<typeof twoVersions>>;
beforeAll(async () => {
  versions = await twoVersions(server().ctx);
}, 120_000);
afterAll(() => versions?.cleanup());

async function collectionWithImages(embedder: string) {
  const { admin } = server();
  const col = await data(admin.api.POST('/v1/collections', { body: { name: unique('versions'), embedder } }));
  for (const r of sampleScenes(41, N)) await admin.uploadImage(col.id, await renderScene(r.scene, { size: 64, layout: r.layout }));
  await eventually('images ready', async () => ((await countImagesByStatus(server().db, col.id)).ready === N ? true : undefined), 60_000);
  return col;
}

describe('collection versions through the API', () => {
  it('reextract answers 202 with the job, the same job while it runs, and the collection switches when it completes', async () => {
    const { admin } = server();
    const { v1, v2 } = versions;
    const col = await collectionWithImages(v1.id);
    const started = await admin.reextractCollection(col.id, v2.id);
    expect(started.collection, JSON.stringify(started)).toMatchObject({ embedder: v1.id, pendingEmbedder: v2.id, reextractionJob: started.job.id });
    expect(started.job).toMatchObject({ kind: 'reextract', collectionId: col.id });
    // Asked again: the running job (200), or, once it has switched, the new version is already active (409).
    const again = await admin.api.POST('/v1/collections/{id}/reextract', { params: { path: { id: col.id } }, body: { model: v2.id } }).catch((e: MiraApiError) => e);
    if (again instanceof MiraApiError) expect(again.problem, JSON.stringify(again.problem)).toMatchObject({ status: 409, code: 'version_active' });
    else expect({ status: again.response.status, job: again.data?.job.id }).toEqual({ status: 200, job: started.job.id });
    const job = await admin.waitForJob(started.job.id, { timeoutMs: 120_000 });
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'completed', result: { switched: true, from: v1.id, to: v2.id, images: N, labels: N } });
    const after = await data(admin.api.GET('/v1/collections/{id}', { params: { path: { id: col.id } } }));
    expect(after, JSON.stringify(after)).toMatchObject({ embedder: v2.id, previousEmbedder: v1.id, pendingEmbedder: null, dim: v2.embedDim });
    const page = await data(admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a red circle', k: 3 } }));
    expect(page, JSON.stringify(page)).toMatchObject({ model: v2.id });
    expect(page.results, JSON.stringify(page)).toHaveLength(3);

    // Deleting the active version is refused; rollback is one call; then the other version can go.
    const refused = await problemOf(admin.deleteCollectionVersion(col.id, v2.id));
    expect(refused.problem, JSON.stringify(refused.problem)).toMatchObject({ status: 409, code: 'version_active' });
    const back = await admin.rollbackCollection(col.id);
    expect(back, JSON.stringify(back)).toMatchObject({ embedder: v1.id, previousEmbedder: v2.id });
    // Token features under both versions (what a re-ranker by each would have stored).
    const { features } = server().ctx;
    const ids = (await data(admin.api.GET('/v1/collections/{id}/images', { params: { path: { id: col.id }, query: { limit: 100 } } }))).items.map((i) => i.id);
    expect(ids).toHaveLength(N);
    for (const m of [v1.id, v2.id]) await Promise.all(ids.map((id) => features.put(m, id, new Float32Array([1, 2, 3, 4]))));
    const gone = await admin.deleteCollectionVersion(col.id, v2.id);
    expect(gone, JSON.stringify(gone)).toMatchObject({ model: v2.id, deleted: N, collection: { embedder: v1.id, previousEmbedder: null } });
    await vi.waitFor(() => expect(features.getMany(v2.id, ids).filter(Boolean)).toHaveLength(0), { timeout: 10_000 });
    expect(features.getMany(v1.id, ids).filter(Boolean)).toHaveLength(N);
    const none = await problemOf(admin.rollbackCollection(col.id));
    expect(none.problem, JSON.stringify(none.problem)).toMatchObject({ status: 409, code: 'no_previous_version' });
  }, 240_000);

  it('refuses bad input with problem+json and changes nothing', async () => {
    const { admin } = server();
    const { v1 } = versions;
    const col = await data(admin.api.POST('/v1/collections', { body: { name: unique('versions-bad'), embedder: v1.id } }));
    const unknown = await problemOf(admin.reextractCollection(col.id, 'nope@9'));
    expect(unknown.problem, JSON.stringify(unknown.problem)).toMatchObject({ status: 404, code: 'not_found' });
    const same = await problemOf(admin.reextractCollection(col.id, v1.id));
    expect(same.problem, JSON.stringify(same.problem)).toMatchObject({ status: 409, code: 'version_active' });
    const bad = await problemOf(admin.api.POST('/v1/collections/{id}/reextract', { params: { path: { id: col.id } }, body: { model: '' } }));
    expect(bad.problem, JSON.stringify(bad.problem)).toMatchObject({ status: 400, code: 'invalid_request' });
    const missing = await problemOf(admin.deleteCollectionVersion(col.id, 'nope@9'));
    expect(missing.problem.status, JSON.stringify(missing.problem)).toBe(404);
    const reader = await server().client(['read']);
    const forbidden = await problemOf(reader.rollbackCollection(col.id));
    expect(forbidden.problem.status).toBe(403);
    const after = await data(admin.api.GET('/v1/collections/{id}', { params: { path: { id: col.id } } }));
    expect(after).toMatchObject({ embedder: v1.id, pendingEmbedder: null, previousEmbedder: null });
  });

  it('activating a new version starts one re-extraction job per collection on another version and lists them', async () => {
    const { admin, db } = server();
    const { v1, v2 } = versions;
    const col = await collectionWithImages(v1.id);
    const before = await getActiveModel(db);
    try {
      const r = await admin.activateModel(v2.id);
      expect(r.model, JSON.stringify(r)).toMatchObject({ id: v2.id, active: true });
      const mine = r.reextractions.filter((x) => x.collection.id === col.id);
      expect(mine, JSON.stringify(r)).toHaveLength(1);
      const job = await admin.waitForJob(mine[0]!.job.id, { timeoutMs: 120_000 });
      expect(job, JSON.stringify(job)).toMatchObject({ state: 'completed', result: { switched: true, to: v2.id } });
    } finally {
      // The database may be shared with other test files: give back the active model they expect.
      if (before) await setActiveModel(db, before.id);
    }
  }, 240_000);
});

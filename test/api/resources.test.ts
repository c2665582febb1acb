import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { images } from '../../src/db/schema/index.ts';
import { createJob, updateJob } from '../../src/db/queries/jobs.ts';
import { getActiveModel, setActiveModel } from '../../src/db/queries/models.ts';
import { ownModel, problemOf, unique, useServer } from './server.ts';

const server = useServer();
const data = MiraClient.data;

describe('collections', () => {
  it('are created, listed, read and deleted', async () => {
    const { admin, db } = server();
    const model = await ownModel(db);
    const name = unique('photos');
    const created = await data(admin.api.POST('/v1/collections', { body: { name, embedder: model.id, hnsw: { m: 8, efConstruction: 100, efSearch: 32 } } }));
    expect(created).toMatchObject({ name, embedder: model.id, reranker: null, dim: 4, hnsw: { m: 8, efConstruction: 100, efSearch: 32 } });
    const got = await data(admin.api.GET('/v1/collections/{id}', { params: { path: { id: created.id } } }));
    expect(got).toEqual(created);
    const listed = await data(admin.api.GET('/v1/collections'));
    expect(listed.items.map((c) => c.id)).toContain(created.id);
    const { response } = await admin.api.DELETE('/v1/collections/{id}', { params: { path: { id: created.id } } });
    expect(response.status).toBe(204);
    const gone = await problemOf(admin.api.GET('/v1/collections/{id}', { params: { path: { id: created.id } } }));
    expect(gone.status).toBe(404);
  });

  it('a taken name is 409 conflict', async () => {
    const { admin, db } = server();
    const model = await ownModel(db);
    const name = unique('dup');
    await data(admin.api.POST('/v1/collections', { body: { name, embedder: model.id } }));
    const err = await problemOf(admin.api.POST('/v1/collections', { body: { name, embedder: model.id } }));
    expect(err.status, JSON.stringify(err.problem)).toBe(409);
    expect(err.code).toBe('conflict');
  });

  it('models that do not exist or cannot serve their role are 422, naming the field', async () => {
    const { admin, db } = server();
    const clip = await ownModel(db);
    const missing = await problemOf(admin.api.POST('/v1/collections', { body: { name: unique('c'), embedder: 'nope@1' } }));
    expect(missing, JSON.stringify(missing.problem)).toMatchObject({ status: 422, code: 'unknown_model' });
    expect(missing.problem.field).toBe('embedder');
    const noItm = await problemOf(admin.api.POST('/v1/collections', { body: { name: unique('c'), embedder: clip.id, reranker: clip.id } }));
    expect(noItm, JSON.stringify(noItm.problem)).toMatchObject({ status: 422, code: 'model_unsuitable' });
    expect(noItm.problem.field).toBe('reranker');
  });
});

describe('models', () => {
  it('are listed with their graphs', async () => {
    const { admin, db } = server();
    const model = await ownModel(db, { graphs: ['itm', 'text', 'vision'] });
    const { items } = await data(admin.api.GET('/v1/models'));
    expect(items.find((m) => m.id === model.id)).toMatchObject({ family: 'clip', embedDim: 4, graphs: ['itm', 'text', 'vision'] });
  });

  it('registering a folder that is not a bundle is 422 bundle_invalid', async () => {
    const err = await problemOf(server().admin.api.POST('/v1/models', { body: { path: `/tmp/${unique('no-bundle')}` } }));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 422, code: 'bundle_invalid' });
  });

  it('activating a new version of the embedder of a collection lists the re-extraction job it starts', async () => {
    const { admin, db } = server();
    const name = unique('family');
    const v1 = await ownModel(db, { name, version: '1' });
    const v2 = await ownModel(db, { name, version: '2' });
    const col = await data(admin.api.POST('/v1/collections', { body: { name: unique('c'), embedder: v1.id } }));
    await db.insert(images).values({ collectionId: col.id, sha256: randomUUID(), source: 'upload:x.png', mime: 'image/png', width: 1, height: 1, bytes: 1 });
    const before = await getActiveModel(db);
    try {
      const r = await data(admin.api.POST('/v1/models/{id}/activate', { params: { path: { id: v2.id } } }));
      expect(r.model, JSON.stringify(r)).toMatchObject({ id: v2.id, active: true });
      expect(r.reextractions.map((x) => x.collection.id), JSON.stringify(r)).toEqual([col.id]);
      expect(r.reextractions[0], JSON.stringify(r)).toMatchObject({ collection: { embedder: v1.id, pendingEmbedder: v2.id }, job: { kind: 'reextract', collectionId: col.id } });
    } finally {
      // Other test files may share this database: the fake model must not stay active.
      if (before) await setActiveModel(db, before.id);
    }
    const unknown = await problemOf(admin.api.POST('/v1/models/{id}/activate', { params: { path: { id: 'nope@9' } } }));
    expect(unknown.status).toBe(404);
  });
});

describe('jobs', () => {
  it('are read with progress, listed by cursor and cancelled once', async () => {
    const { admin, db } = server();
    const model = await ownModel(db);
    const col = await data(admin.api.POST('/v1/collections', { body: { name: unique('c'), embedder: model.id } }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { job } = await createJob(db, { id: unique('job'), kind: 'ingest', collectionId: col.id, payload: {}, progress: { done: i, total: 5 } });
      ids.push(job.id);
    }
    const one = await admin.getJob(ids[2]!);
    expect(one).toMatchObject({ id: ids[2], state: 'queued', collectionId: col.id, progress: { done: 2, total: 5 } });

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await data(admin.api.GET('/v1/jobs', { params: { query: { collectionId: col.id, limit: 2, ...(cursor ? { cursor } : {}) } } }));
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((j) => j.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.sort()).toEqual([...ids].sort());

    const cancelled = await data(admin.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id: ids[0]! } } }));
    expect(cancelled.state).toBe('cancelled');
    await updateJob(db, ids[1]!, { state: 'completed' });
    const done = await problemOf(admin.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id: ids[1]! } } }));
    expect(done, JSON.stringify(done.problem)).toMatchObject({ status: 409, code: 'job_finished' });
  });

  it('waitForJob reports progress until the job finishes', async () => {
    const { admin, db } = server();
    const { job } = await createJob(db, { id: unique('job'), kind: 'ingest', payload: {}, progress: { done: 0, total: 2 } });
    const heard: number[] = [];
    const finished = admin.waitForJob(job.id, {
      timeoutMs: 30_000,
      onProgress: (p) => {
        heard.push(p.done);
        // Drive the job from the first progress report: no timing assumptions.
        if (p.done === 0) void updateJob(db, job.id, { state: 'running', progress: { done: 1, total: 2 } });
        if (p.done === 1) void updateJob(db, job.id, { state: 'completed', progress: { done: 2, total: 2 } });
      },
    });
    const final = await finished;
    expect(final.state).toBe('completed');
    expect(heard).toEqual([0, 1, 2]);
  });
});

describe('keys', () => {
  it('are created (secret shown once), listed without secrets and revoked', async () => {
    const { admin } = server();
    const name = unique('key');
    const created = await data(admin.api.POST('/v1/keys', { body: { name, scopes: ['read', 'write'] } }));
    expect(created.key).toMatch(/^mira_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(`mira_${created.apiKey.prefix}_`)).toBe(true);
    const { items } = await data(admin.api.GET('/v1/keys', { params: { query: {} } }));
    const listed = items.find((k) => k.id === created.apiKey.id);
    expect(listed).toMatchObject({ name, scopes: ['read', 'write'], collections: null, revokedAt: null });
    expect(JSON.stringify(items)).not.toContain(created.key.slice('mira_'.length + 13)); // the secret (it may itself contain '_')
    await admin.api.DELETE('/v1/keys/{id}', { params: { path: { id: created.apiKey.id } } });
    const after = await data(admin.api.GET('/v1/keys', { params: { query: { includeRevoked: 'true' } } }));
    expect(after.items.find((k) => k.id === created.apiKey.id)?.revokedAt).not.toBeNull();
  });

  it('a key for collections that do not exist is 422 unknown_collection', async () => {
    const err = await problemOf(server().admin.api.POST('/v1/keys', { body: { name: unique('k'), scopes: ['read'], collections: [randomUUID()] } }));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 422, code: 'unknown_collection' });
  });
});

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, MiraClient } from '../../sdk/src/index.ts';
import { createCollection, deleteCollection, getCollection } from '../../src/db/queries/collections.ts';
import { getJob, listJobs } from '../../src/db/queries/jobs.ts';
import { getActiveModel, listModels, type Model } from '../../src/db/queries/models.ts';
import { createKey } from '../../src/api/keys.ts';
import { startFinetune } from '../../src/finetune/start.ts';
import { problemOf, unique, useServer } from '../api/server.ts';
import { eventually, testContext, type TestContext } from '../support/context.ts';
import { runMira } from '../support/mira-process.ts';
import { fakeTrainer, finetunableModel, sceneCollection, type FakeMode, type SceneCollection } from './finetune-helpers.ts';

/**
 * Fine-tuning jobs through the API when the trainer fails, stalls, writes a bad bundle or does not
 * improve: the job ends with the reason and every model and collection is as it was. MIRA_PYTHON
 * is a stand-in trainer (finetune-helpers.ts) told what to do per test; the real trainer runs in
 * finetune.test.ts.
 */
let fake: Awaited<ReturnType<typeof fakeTrainer>>;
const server = useServer(async () => {
  fake = await fakeTrainer();
  return { MIRA_PYTHON: fake.python, MIRA_RATE_LIMIT_PER_MIN: '100000' };
});

let base: Awaited<ReturnType<typeof finetunableModel>>;
let scenes: SceneCollection;
let admin: MiraClient;
beforeAll(async () => {
  const { ctx } = server();
  admin = server().admin;
  base = await finetunableModel(ctx);
  scenes = await sceneCollection(ctx, base.model, { seed: 4243, n: 12, style: 'outlined' });
  for (const [id, r] of scenes.scenes) {
    await admin.api.PATCH('/v1/images/{id}', { params: { path: { id } }, body: { metadata: { caption: r.captions[0]! } } });
  }
}, 300_000);
afterAll(async () => {
  if (scenes) await deleteCollection(server().db, scenes.collection.id);
  await base?.cleanup();
  await fake?.cleanup();
});

const versionsOf = async (m: Model) => (await listModels(server().db)).filter((x) => x.name === m.name).map((x) => x.id);

/** Runs a fine-tuning job with the stand-in in `mode` and returns it finished. */
async function runJob(mode: FakeMode, body: Partial<Parameters<MiraClient['finetune']>[0]> = {}): Promise<Job> {
  await fake.setMode(mode);
  const job = await admin.finetune({ collection: scenes.collection.id, steps: 5, ...body });
  expect(job.kind).toBe('finetune');
  return admin.waitForJob(job.id, { timeoutMs: 120_000 });
}

/** What must hold after any failed or declined run: no new version, the collection and the active model as they were, no work files. */
async function expectUntouched(job: Job) {
  const { db, ctx } = server();
  expect(await versionsOf(base.model), JSON.stringify(job)).toEqual([base.model.id]);
  expect((await getCollection(db, { id: scenes.collection.id }))!.embedder).toBe(base.model.id);
  expect((await getActiveModel(db))?.id).toBe(ctx.defaultModel.id);
  expect(await readdir(join(ctx.dataDir, 'finetune')).catch(() => [])).toEqual([]);
}

describe(`fine-tuning failures (${server.mode} mode)`, () => {
  it('refuses requests it cannot run with a problem naming the field, and records no job', async () => {
    const { db, ctx } = server();
    const [first] = scenes.scenes.keys();
    const unknown = await problemOf(
      admin.finetune({ collection: scenes.collection.id, source: { kind: 'pairs', pairs: [{ image: first!, caption: 'a small red circle' }, { image: 'f'.repeat(64), caption: 'a large blue square' }] } }),
    );
    expect(unknown.status, JSON.stringify(unknown.problem)).toBe(400);
    expect(unknown.problem.code).toBe('invalid_request');
    expect(unknown.problem.errors?.[0]?.pointer).toBe('/source/pairs/1/image');

    const tiny = await createCollection(db, { name: unique('ft-tiny'), embedder: ctx.defaultModel.id });
    const empty = await createCollection(db, { name: unique('ft-empty'), embedder: base.model.id });
    try {
      const unsuitable = await problemOf(admin.finetune({ collection: tiny.id }));
      expect(unsuitable.status, JSON.stringify(unsuitable.problem)).toBe(422);
      expect(unsuitable.problem.code).toBe('model_unsuitable');
      const tooFew = await problemOf(admin.finetune({ collection: empty.id }));
      expect(tooFew.status, JSON.stringify(tooFew.problem)).toBe(400);
      expect(tooFew.problem.detail).toMatch(/at least 10/);
      const badOption = await problemOf(admin.finetune({ collection: scenes.collection.id, holdout: 0.9 }));
      expect(badOption.status, JSON.stringify(badOption.problem)).toBe(400);
      for (const c of [scenes.collection, tiny, empty]) expect((await listJobs(db, { collectionId: c.id, limit: 10 })).items.filter((j) => j.kind === 'finetune')).toEqual([]);
    } finally {
      await deleteCollection(db, tiny.id);
      await deleteCollection(db, empty.id);
    }
  });

  it('fails at once, with how to install them, when MIRA_PYTHON cannot import torch', async () => {
    const job = await runJob('no-torch');
    expect(job.state, JSON.stringify(job)).toBe('failed');
    expect(job.error).toMatch(/No module named 'torch'/);
    expect(job.error).toMatch(/apt-get install -y python3-torch/);
    expect(job.error).toMatch(/MIRA_PYTHON=/);
    await expectUntouched(job);
  });

  it('records the reason of a trainer that exits non-zero and changes no model', async () => {
    const job = await runJob('crash');
    expect(job.state, JSON.stringify(job)).toBe('failed');
    expect(job.error).toMatch(/exited with code 1: RuntimeError: out of memory \(fake trainer\)/);
    expect(job.error).toMatch(/active model is unchanged/);
    // Progress streamed before the failure.
    expect(job.progress, JSON.stringify(job.progress)).toMatchObject({ pairs: 12, beforeItcR1: 0.5 });
    await expectUntouched(job);
  });

  it('registers nothing when the output bundle is not valid', async () => {
    const job = await runJob('bad-bundle');
    expect(job.state, JSON.stringify(job)).toBe('failed');
    expect(job.error).toMatch(/fine-tuned bundle is not valid: .*manifest\.json: not valid JSON/);
    await expectUntouched(job);
  });

  it('completes without registering when held-out R@1 does not improve, with both figures', async () => {
    const job = await runJob('no-gain');
    expect(job.state, JSON.stringify(job)).toBe('completed');
    expect(job.result, JSON.stringify(job.result)).toMatchObject({
      registered: false,
      metric: 't2i_itc_r1',
      before: { t2i_itc_r1: 0.5, t2i_rerank_r1: 0.5 },
      after: { t2i_itc_r1: 0.5, t2i_rerank_r1: 0.5 },
      pairs: 12,
    });
    expect((job.result as { reason: string }).reason).toMatch(/did not improve/);
    await expectUntouched(job);
  });

  it('stops a trainer that runs past timeoutSeconds, kills it and records why', async () => {
    const job = await runJob('hang', { timeoutSeconds: 2 });
    expect(job.state, JSON.stringify(job)).toBe('failed');
    expect(job.error).toMatch(/ran past timeoutSeconds=2/);
    expect(alive(await fake.pid()), 'the trainer process is gone').toBe(false);
    await expectUntouched(job);
  });

  it('stops the trainer when the job is cancelled', async () => {
    await fake.setMode('hang');
    const started = await admin.finetune({ collection: scenes.collection.id, steps: 5 });
    await eventually('the trainer to start', async () => ((await admin.getJob(started.id)).progress.beforeItcR1 === 0.5 ? true : undefined), 60_000);
    const pid = await fake.pid();
    await admin.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id: started.id } } });
    await eventually('the trainer to be killed', async () => (alive(pid) ? undefined : true), 30_000);
    const job = await admin.waitForJob(started.id, { timeoutMs: 30_000 });
    expect(job.state, JSON.stringify(job)).toBe('cancelled');
    await eventually('work files removed', async () => ((await readdir(join(server().ctx.dataDir, 'finetune')).catch(() => [])).length === 0 ? true : undefined));
    await expectUntouched(job);
  });

  it('runs from `mira finetune --pairs FILE --api URL --wait`, and names the bad line of a pairs file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mira-finetune-cli-'));
    try {
      const { key } = await createKey(server().db, { name: unique('cli-key'), scopes: ['admin'], collections: null });
      const env = { MIRA_API_URL: server().url, MIRA_API_KEY: key };
      const file = join(dir, 'pairs.jsonl');
      const lines = [...scenes.scenes].map(([id, r]) => JSON.stringify({ image: id, captions: r.captions }));
      await writeFile(file, `${lines[0]}\n${JSON.stringify({ image: 'missing.png', caption: 'a red circle' })}\n`);
      const bad = await runMira(['finetune', '--collection', scenes.collection.name, '--pairs', file], env);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toContain(`${file}:2: field "image"`);

      await fake.setMode('no-gain');
      await writeFile(file, lines.join('\n') + '\n');
      const run = await runMira(['finetune', '--collection', scenes.collection.name, '--pairs', file, '--steps', '5', '--wait', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      const job = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Job;
      const pairs = [...scenes.scenes.values()].reduce((n, r) => n + r.captions.length, 0);
      expect(job, run.stdout).toMatchObject({ kind: 'finetune', state: 'completed', result: { registered: false, pairs } });
      await expectUntouched(job);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('registers an improved version and starts re-extraction when asked', async () => {
    const job = await runJob('gain', { reextract: true });
    expect(job.state, JSON.stringify(job)).toBe('completed');
    const result = job.result as { registered: boolean; modelId: string; reextract: { jobId: string } };
    const next = `${base.model.name}@2`;
    expect(result, JSON.stringify(result)).toMatchObject({ registered: true, modelId: next, before: { t2i_itc_r1: 0.5 }, after: { t2i_itc_r1: 1 } });
    expect(await versionsOf(base.model)).toEqual([base.model.id, next]);
    const models = await admin.api.GET('/v1/models');
    expect(models.data?.items.map((m) => m.id)).toContain(next);
    const reextract = await admin.waitForJob(result.reextract.jobId, { timeoutMs: 120_000 });
    expect(reextract.state, JSON.stringify(reextract)).toBe('completed');
    expect((await getCollection(server().db, { id: scenes.collection.id }))!.embedder).toBe(next);
  });
});

describe('fine-tuning without a Python (embedded mode)', () => {
  let t: TestContext;
  let own: Awaited<ReturnType<typeof finetunableModel>>;
  beforeAll(async () => {
    t = await testContext('embedded', { MIRA_PYTHON: '/nonexistent/python3', MIRA_CAPTION_ON_INGEST: 'false' });
    own = await finetunableModel(t.ctx);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await own?.cleanup();
  });

  it('fails at once with the install line when MIRA_PYTHON=/nonexistent', async () => {
    const { collection, scenes: images } = await sceneCollection(t.ctx, own.model, { seed: 4244, n: 10, style: 'outlined' });
    const pairs = [...images].map(([id, r]) => ({ image: id, caption: r.captions[0]! }));
    const started = await startFinetune(t.ctx, collection, { source: { kind: 'pairs', pairs }, steps: 5, holdout: 0.2, batch: 32, lr: 5e-5, seed: 0, device: 'auto', reextract: false, timeoutSeconds: 60 });
    const job = await eventually('the job to fail', async () => {
      const j = await getJob(t.ctx.db, started.id);
      return j?.state === 'failed' ? j : undefined;
    });
    expect(job.error).toMatch(/MIRA_PYTHON=\/nonexistent\/python3 cannot be run/);
    expect(job.error).toMatch(/apt-get install -y python3-torch python3-numpy python3-pil/);
    expect((await listModels(t.ctx.db)).filter((m) => m.name === own.model.name)).toHaveLength(1);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

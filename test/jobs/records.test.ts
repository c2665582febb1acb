/**
 * Job records through both runners (BullMQ with a worker in this process, and in-process): what
 * submitJob stores, how the record follows a try, and cancel through the API.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { ApiError } from '../../src/api/errors.ts';
import { createKey } from '../../src/api/keys.ts';
import { getJob, listJobs } from '../../src/db/queries/jobs.ts';
import { submitJob } from '../../src/jobs/submit.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { eventually, modes, testContext, uniqueName, type TestContext } from '../support/context.ts';
import { finishedChunks, finishedJob, jobWhen, sceneFolder } from './helpers.ts';

const N = 24;
/** Enough images that a job with one per chunk is still running when the test acts on it. */
const MANY = 300;

describe.each(modes)('job records (%s)', (mode) => {
  let root: string;
  let many: string;
  let t: TestContext;
  let server: RunningServer;
  let client: MiraClient;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mira-records-'));
    for (const [name, n] of [['few', N], ['many', MANY]] as const) {
      await mkdir(join(root, name));
      await sceneFolder(n, n, join(root, name));
    }
    many = join(root, 'many');
    t = await testContext(mode, { MIRA_INGEST_ROOT: root, MIRA_CAPTION_ON_INGEST: 'false' });
    server = await startServer(t.ctx, { host: '127.0.0.1', port: 0 });
    const { key } = await createKey(t.ctx.db, { name: uniqueName('records'), scopes: ['admin'], collections: null });
    client = new MiraClient({ baseUrl: server.url, apiKey: key });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await t?.stop();
    await rm(root, { recursive: true, force: true });
  });
  const files = (chunkSize: number, path = join(root, 'few')) => ({ source: { kind: 'path', path }, modelId: t.ctx.defaultModel.id, chunkSize });

  it('refuses a bad payload with invalid_payload and stores nothing', async () => {
    const id = `extract_${randomUUID()}`;
    const before = (await listJobs(t.ctx.db, { limit: 200 })).items.length;
    const err = await submitJob(t.ctx, 'extract', { source: { kind: 'collection', collectionId: 'not-a-uuid' }, modelId: 'x' }, { id }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err, String(err)).toMatchObject({ code: 'invalid_payload', status: 400 });
    expect((err as Error).message).toMatch(/source\.collectionId/);
    expect(await getJob(t.ctx.db, id)).toBeUndefined();
    expect((await listJobs(t.ctx.db, { limit: 200 })).items.length).toBe(before);
  });

  it('keeps the record true: running with an attempt, progress with rate and ETA, then completed with the result', async () => {
    const job = await submitJob(t.ctx, 'extract', files(2));
    expect(job).toMatchObject({ kind: 'extract', state: 'queued', attempts: 0 });
    expect(job.id).toMatch(/^extract_[0-9a-f-]{36}$/);
    const again = await submitJob(t.ctx, 'extract', files(2), { id: job.id });
    expect(again.id, 'the same id is the same job').toBe(job.id);
    const moving = await jobWhen(t.ctx, job.id, 'progress with a rate', (j) => j.state !== 'queued' && typeof (j.progress as { rate?: number }).rate === 'number');
    expect(moving.startedAt, JSON.stringify(moving)).not.toBeNull();
    const done = await finishedJob(t.ctx, job.id);
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', attempts: 1, error: null, progress: { done: N, total: N }, result: { rows: N, chunks: N / 2, computed: N } });
    expect((done.progress as { rate: number }).rate).toBeGreaterThan(0);
    expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
  }, 180_000);

  it('cancels a running job through the API: it stops at the next chunk and is not retried', async () => {
    const job = await submitJob(t.ctx, 'extract', files(1, many));
    await jobWhen(t.ctx, job.id, 'a chunk done', (j) => j.state === 'running' && (j.progress as { done: number }).done >= 1);
    const cancelled = await client.cancelJob(job.id);
    expect(cancelled.state).toBe('cancelled');
    // Stopped: the queue no longer runs it, and no chunk is written after that.
    await notRunning(t, job.id);
    const chunks = await finishedChunks(t.ctx.dataDir, job.id);
    expect(chunks, 'stopped before the end').toBeLessThan(MANY);
    await new Promise((r) => setTimeout(r, 2500)); // past the first retry backoff (2 s)
    const after = (await getJob(t.ctx.db, job.id))!;
    expect(after, JSON.stringify(after)).toMatchObject({ state: 'cancelled', attempts: 1, result: null });
    expect(await finishedChunks(t.ctx.dataDir, job.id), 'no chunk written after the cancel').toBe(chunks);
    const again = await client.cancelJob(job.id);
    expect(again.state, 'cancelling twice is harmless').toBe('cancelled');
  }, 180_000);

  it('cancels a queued job before it runs', async () => {
    const first = await submitJob(t.ctx, 'extract', files(1, many));
    const second = await submitJob(t.ctx, 'extract', files(1));
    await jobWhen(t.ctx, first.id, 'running', (j) => j.state === 'running');
    expect((await client.cancelJob(second.id)).state).toBe('cancelled');
    await client.cancelJob(first.id);
    await notRunning(t, first.id);
    await new Promise((r) => setTimeout(r, 1500)); // a worker that still took it would have started it
    expect(await getJob(t.ctx.db, second.id), 'never started').toMatchObject({ state: 'cancelled', attempts: 0, startedAt: null });
  }, 180_000);
});

/** Resolves once the queue no longer runs the job. */
function notRunning(t: TestContext, id: string) {
  return eventually(`job ${id} off the worker`, async () => ((await t.ctx.queue.state('extract', id)) === 'active' ? undefined : true), 30_000);
}

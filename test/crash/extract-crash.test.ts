/**
 * Extraction with the worker in another process (`mira worker`): killed with SIGKILL mid-job, the
 * job resumes on the next worker without computing the finished chunks again; cancelled through
 * the API while it runs there, it stops within about a second and is not retried.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { loadEnv } from '../../src/config.ts';
import { createContext, type AppContext } from '../../src/context.ts';
import { getJob } from '../../src/db/queries/jobs.ts';
import { submitJob } from '../../src/jobs/submit.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { finishedChunks, finishedJob, jobWhen, sceneFolder } from '../jobs/helpers.ts';
import { childProcessEnv, eventually, uniqueName } from '../support/context.ts';
import { spawnMira, type MiraProcess } from '../support/mira-process.ts';
import { privateDatabase } from '../support/private-services.ts';

const service = !!(process.env.DATABASE_URL && process.env.REDIS_URL);
if (!service) console.warn('extraction crash test skipped: it needs DATABASE_URL and REDIS_URL (real Postgres and Redis)');

const N = 160;
const CHUNK = 4;

describe.skipIf(!service)('an extraction run by a worker process', () => {
  let root: string;
  let dataDir: string | undefined;
  let db: Awaited<ReturnType<typeof privateDatabase>> | undefined;
  let env: Record<string, string>;
  let ctx: AppContext | undefined;
  let server: RunningServer | undefined;
  let worker: MiraProcess | undefined;
  beforeAll(async () => {
    root = await sceneFolder(N, 11);
    // A database of its own: the worker's reconciliation sees only this test's records.
    db = await privateDatabase(process.env.DATABASE_URL!);
    const child = await childProcessEnv('extract-crash', { DATABASE_URL: db.url, MIRA_INGEST_ROOT: root, MIRA_JOB_LOCK_MS: '3000' });
    ({ dataDir, env } = child);
    ctx = await createContext({ role: 'api', env: loadEnv(env as NodeJS.ProcessEnv), log: createLogger('extract-crash', 'warn') });
    server = await startServer(ctx, { host: '127.0.0.1', port: 0 });
  }, 120_000);
  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    await server?.close();
    await ctx?.close();
    await db?.drop();
    for (const d of [root, dataDir]) if (d) await rm(d, { recursive: true, force: true });
  });
  const files = () => ({ source: { kind: 'path', path: root }, modelId: ctx!.defaultModel.id, chunkSize: CHUNK });

  it('resumes after SIGKILL at the first unfinished chunk, without computing the finished ones again', async () => {
    worker = spawnMira(['worker'], env);
    const job = await submitJob(ctx!, 'extract', files());
    await eventually('two chunks written', async () => ((await finishedChunks(dataDir!, job.id)) >= 2 ? true : undefined), 120_000, 10);
    worker.child.kill('SIGKILL');
    await worker.exited;
    const kept = await finishedChunks(dataDir!, job.id);
    expect(kept, 'killed mid-job').toBeLessThan(N / CHUNK);
    expect((await getJob(ctx!.db, job.id))?.state, 'the record still says running').toBe('running');

    worker = spawnMira(['worker'], env);
    const done = await finishedJob(ctx!, job.id, 180_000);
    expect(done, `${JSON.stringify(done)}\n${worker.output().stderr}`).toMatchObject({ state: 'completed', attempts: 2, progress: { done: N, total: N } });
    expect(done.result, JSON.stringify(done.result)).toMatchObject({ rows: N, failed: 0, chunks: N / CHUNK, chunksReused: kept, computed: N - kept * CHUNK });
  }, 300_000);

  it('stops a running job cancelled through the API within about a second, and does not retry it', async () => {
    if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) worker = spawnMira(['worker'], env);
    const { key } = await createKey(ctx!.db, { name: uniqueName('extract-crash'), scopes: ['write', 'read'], collections: null });
    const client = new MiraClient({ baseUrl: server!.url, apiKey: key });
    const job = await client.extract({ path: root, chunkSize: 1 });
    await jobWhen(ctx!, job.id, 'running with progress', (j) => j.state === 'running' && (j.progress as { done: number }).done >= 1, 120_000);
    expect((await client.cancelJob(job.id)).state).toBe('cancelled');
    await eventually('the worker lets go', async () => ((await ctx!.queue.state('extract', job.id)) === 'active' ? undefined : true), 30_000);
    const chunks = await finishedChunks(dataDir!, job.id);
    expect(chunks).toBeLessThan(N);
    await new Promise((r) => setTimeout(r, 3000)); // past the first retry backoff (2 s)
    expect(await finishedChunks(dataDir!, job.id), 'nothing written after it stopped').toBe(chunks);
    expect(await client.getJob(job.id)).toMatchObject({ state: 'cancelled', attempts: 1 });
  }, 300_000);
});

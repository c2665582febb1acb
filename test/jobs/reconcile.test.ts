/**
 * Queue hygiene in service mode, on a Redis and a database of this test's own: job records survive
 * a Redis restart and reconciliation puts them right; finished jobs are trimmed from Redis and
 * kept in Postgres.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config.ts';
import { createContext, processorDeps, type AppContext } from '../../src/context.ts';
import { createJob, getJob, updateJob } from '../../src/db/queries/jobs.ts';
import { BullJobQueue, startBullWorkers, type WorkerHandle } from '../../src/jobs/bull.ts';
import { processors } from '../../src/jobs/processors/index.ts';
import { reconcileJobRecords } from '../../src/jobs/reconcile.ts';
import { processorTable } from '../../src/jobs/registry.ts';
import { submitJob } from '../../src/jobs/submit.ts';
import type { Processor } from '../../src/jobs/types.ts';
import { createLogger } from '../../src/log.ts';
import { TINY_BLIP } from '../inference/helpers.ts';
import { eventually } from '../support/context.ts';
import { privateDatabase } from '../support/private-services.ts';
import { noRedisServer, privateRedis, type PrivateRedis } from '../support/redis-server.ts';
import { finishedJob, sceneFolder } from './helpers.ts';

const why = !process.env.DATABASE_URL ? 'DATABASE_URL is not set' : noRedisServer;
if (why) console.warn(`queue hygiene tests skipped: ${why}`);
const log = createLogger('reconcile-test', 'error');

describe.skipIf(!!why)('queue hygiene (service mode)', () => {
  let redis: PrivateRedis;
  let db: Awaited<ReturnType<typeof privateDatabase>>;
  let ctx: AppContext;
  let root: string;
  let dataDir: string;
  const workers: WorkerHandle[] = [];
  beforeAll(async () => {
    redis = await privateRedis();
    await redis.start();
    db = await privateDatabase(process.env.DATABASE_URL!);
    root = await sceneFolder(4);
    dataDir = await mkdtemp(join(tmpdir(), 'mira-reconcile-'));
    const env = loadEnv({
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      MIRA_DATA_DIR: dataDir,
      MIRA_MODEL_DIR: TINY_BLIP,
      MIRA_INFERENCE_THREADS: '1',
      MIRA_INGEST_ROOT: root,
      MIRA_QUEUE_PREFIX: `mira-reconcile-${randomUUID().slice(0, 8)}`,
    } as NodeJS.ProcessEnv);
    ctx = await createContext({ role: 'api', env, log });
  }, 120_000);
  afterAll(async () => {
    for (const w of workers) await w.close(5000);
    await ctx?.close();
    await redis?.stop();
    await db?.drop();
    for (const d of [root, dataDir]) if (d) await rm(d, { recursive: true, force: true });
  });
  const startWorker = (table = processorTable(processors, ['extract'])) => {
    const w = startBullWorkers(processorDeps(ctx), table, { redisUrl: redis.url, prefix: ctx.env.MIRA_QUEUE_PREFIX, log });
    workers.push(w);
    return w;
  };
  const files = () => ({ source: { kind: 'path', path: root }, modelId: ctx.defaultModel.id, chunkSize: 2 });

  it('after a Redis restart, a lost extraction is queued again and runs; a lost fine-tuning is marked lost with the reason', async () => {
    const extract = await submitJob(ctx, 'extract', files());
    expect(await ctx.queue.state('extract', extract.id)).toBe('waiting');
    // A fine-tuning job the queue held: recorded directly, as no worker here could run one.
    const { job: finetune } = await createJob(ctx.db, { id: `finetune_${randomUUID()}`, kind: 'finetune', payload: {} });

    await redis.stop();
    await redis.start(); // without persistence: every job is gone
    const state = await eventually('Redis back', async () => ctx.queue.state('extract', extract.id).catch(() => undefined));
    expect(state, 'the queue no longer knows the job').toBe('unknown');
    expect((await getJob(ctx.db, extract.id))?.state, 'the record survives').toBe('queued');

    const fresh = await reconcileJobRecords(ctx.db, ctx.queue, log, { runningMs: 60_000, queuedMs: 60_000 });
    expect(fresh, 'records touched within the grace are left alone').toEqual({ requeued: [], lost: [] });
    const r = await reconcileJobRecords(ctx.db, ctx.queue, log, { runningMs: 0, queuedMs: 0 });
    expect(r).toEqual({ requeued: [extract.id], lost: [finetune.id] });
    expect(await ctx.queue.state('extract', extract.id)).toBe('waiting');
    const lost = await getJob(ctx.db, finetune.id);
    expect(lost, JSON.stringify(lost)).toMatchObject({ state: 'lost' });
    expect(lost!.error).toMatch(/queue lost this finetune job/);

    startWorker();
    const done = await finishedJob(ctx, extract.id);
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', attempts: 1, result: { rows: 4 } });
    expect(await reconcileJobRecords(ctx.db, ctx.queue, log, { runningMs: 0, queuedMs: 0 }), 'nothing left to do').toEqual({ requeued: [], lost: [] });
  }, 180_000);

  it('trims finished jobs from Redis beyond keepCompleted, and keeps them all in Postgres', async () => {
    for (const w of workers.splice(0)) await w.close(5000);
    // The real processor, keeping one completed job in Redis.
    const keepOne: Processor<unknown, unknown> = { ...processors.find((p) => p.kind === 'extract')!, queue: { ...processors.find((p) => p.kind === 'extract')!.queue, keepCompleted: 1 } };
    const table = processorTable([keepOne], ['extract']);
    const producer = await BullJobQueue.connect(table, { redisUrl: redis.url, prefix: ctx.env.MIRA_QUEUE_PREFIX });
    startWorker(table);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const job = await submitJob({ ...ctx, queue: producer }, 'extract', files());
        expect((await finishedJob(ctx, job.id)).state).toBe('completed');
        ids.push(job.id);
      }
      const bull = await import('bullmq');
      const q = new bull.Queue('mira-extract', { connection: { url: redis.url }, prefix: ctx.env.MIRA_QUEUE_PREFIX });
      try {
        const inRedis = await eventually('trimmed', async () => {
          const present = await Promise.all(ids.map(async (id) => !!(await q.getJob(id))));
          return present.filter(Boolean).length === 1 ? present : undefined;
        });
        expect(inRedis, 'only the newest finished job stays in Redis').toEqual([false, false, true]);
      } finally {
        await q.close();
      }
      for (const id of ids) expect((await getJob(ctx.db, id))?.state, `${id} kept in Postgres`).toBe('completed');
    } finally {
      await producer.close();
    }
  }, 180_000);
});

describe.skipIf(!process.env.DATABASE_URL)('a process without Redis on a shared Postgres', () => {
  it("leaves other processes' live jobs alone at startup, and marks only the stale ones lost", async () => {
    const db = await privateDatabase(process.env.DATABASE_URL!);
    const dataDir = await mkdtemp(join(tmpdir(), 'mira-reconcile-shared-'));
    const env = loadEnv({ DATABASE_URL: db.url, MIRA_DATA_DIR: dataDir, MIRA_MODEL_DIR: TINY_BLIP, MIRA_INFERENCE_THREADS: '1' } as NodeJS.ProcessEnv);
    let ctx: AppContext | undefined;
    let other: AppContext | undefined;
    try {
      ctx = await createContext({ role: 'api', env, log });
      // Two fine-tunings another process (a BullMQ worker) runs: one reporting progress now, one silent for 5 minutes.
      const ids = { live: `finetune_${randomUUID()}`, stale: `finetune_${randomUUID()}` };
      for (const id of Object.values(ids)) {
        await createJob(ctx.db, { id, kind: 'finetune', payload: {} });
        await updateJob(ctx.db, id, { state: 'running' });
      }
      await ctx.db.execute(sql`update jobs set updated_at = now() - interval '5 minutes' where id = ${ids.stale}`);
      await ctx.close();
      ctx = undefined;
      // The Redis-less process's startup.
      other = await createContext({ role: 'api', env, log });
      expect((await getJob(other.db, ids.live))?.state).toBe('running');
      expect((await getJob(other.db, ids.stale))?.state).toBe('lost');
    } finally {
      await ctx?.close();
      await other?.close();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

import { randomInt } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { getImageBySha256 } from '../../src/db/queries/images.ts';
import { inspectImage } from '../../src/ingest/inspect.ts';
import { ingestJobId } from '../../src/ingest/pipeline.ts';
import { BullJobQueue } from '../../src/jobs/bull.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { eventually, testContext, type TestContext } from '../support/context.ts';
import { privateDatabase } from '../support/private-services.ts';
import { noRedisServer, privateRedis, type PrivateRedis } from '../support/redis-server.ts';
import { problemOf, unique } from './server.ts';

const skip = !process.env.DATABASE_URL ? 'DATABASE_URL is not set (service mode needs Postgres)' : noRedisServer;
if (skip) console.warn(`redis-down test skipped: ${skip}`);

const png = () =>
  sharp({ create: { width: 24, height: 24, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } })
    .png()
    .toBuffer();

/**
 * A service-mode server (Postgres, BullMQ) whose Redis is one this test owns and shuts down. An
 * upload then fails fast with 503, and is not acknowledged: the pending row it may leave is not an
 * accepted image, and the next ingest of the same bytes queues it (ingestImage queues on every call
 * while the image is pending).
 */
describe.skipIf(!!skip)('with Redis down', () => {
  let redis: PrivateRedis;
  // Its own database too: a worker on a fresh Redis requeues every pending image it finds, and the
  // shared test database holds other files' (a close then waits for all of them).
  let pg: Awaited<ReturnType<typeof privateDatabase>> | undefined;
  let test: TestContext | undefined;
  let server: RunningServer | undefined;
  let client: MiraClient;
  let collectionId: string;

  beforeAll(async () => {
    redis = await privateRedis();
    await redis.start();
    pg = await privateDatabase(process.env.DATABASE_URL!, 'mira_redis_down');
    test = await testContext('service', { REDIS_URL: redis.url, DATABASE_URL: pg.url });
    server = await startServer(test.ctx, { host: '127.0.0.1', port: 0 });
    const { key } = await createKey(test.ctx.db, { name: unique('redis-down'), scopes: ['admin'], collections: null });
    client = new MiraClient({ baseUrl: server.url, apiKey: key });
    const model = test.ctx.defaultModel.id;
    collectionId = (await MiraClient.data(client.api.POST('/v1/collections', { body: { name: unique('redis-down'), embedder: model } }))).id;
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    // The worker closes cleanly only with its Redis there.
    await redis?.start();
    await test?.stop();
    await redis?.stop();
    await pg?.drop();
  }, 60_000);

  it('an upload answers 503 queue_unavailable within 2 s, and the same bytes are queued once Redis is back', async () => {
    const before = await client.uploadImage(collectionId, await png());
    expect(before.jobId, `with Redis up the upload is queued: ${JSON.stringify(before)}`).toBeTruthy();

    await redis.stop();
    const bytes = await png();
    const sent = performance.now();
    const err = await problemOf(client.uploadImage(collectionId, bytes));
    const ms = performance.now() - sent;
    expect(err.problem, JSON.stringify(err.problem)).toMatchObject({ status: 503, code: 'queue_unavailable', type: 'https://mira.dev/problems/queue-unavailable' });
    expect(err.headers.get('content-type')).toBe('application/problem+json');
    expect(err.retryAfter, 'Retry-After tells the client when to try again').toBeGreaterThan(0);
    expect(ms, `answered after ${ms.toFixed(0)} ms`).toBeLessThan(2000);

    // Not acknowledged, but the row may be there, pending, with its original stored.
    const { sha256 } = await inspectImage(bytes, test!.ctx.limits);
    const left = await getImageBySha256(test!.ctx.db, collectionId, sha256);
    expect(left?.status ?? 'absent', JSON.stringify(left)).toMatch(/^(pending|absent)$/);

    await redis.start();
    const queue = test!.ctx.queue as BullJobQueue;
    await eventually('the API to reconnect to Redis', async () => ((await queue.ping()) ? true : undefined), 15_000);
    expect(await queue.state('ingest', ingestJobId(collectionId, sha256)), 'no job of the refused upload').toBe('unknown');
    const again = await client.uploadImage(collectionId, bytes);
    expect(again, JSON.stringify(again)).toMatchObject({ created: !left, image: { sha256, status: 'pending' } });
    if (left) expect(again.image.id, 'the same row, queued now').toBe(left.id);
    expect(again.jobId).toBeTruthy();
    const job = await client.waitForJob(again.jobId!, { timeoutMs: 30_000 });
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'completed', result: { imageId: again.image.id } });
  }, 60_000);
});

/**
 * Observability through the real server: /metrics before and after an ingest and a search, and the
 * JSON log lines those requests and jobs write. (/readyz while loading: readiness.test.ts.)
 */
import { randomInt } from 'node:crypto';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient, type Schemas } from '../../sdk/src/index.ts';
import { createJob, updateJob } from '../../src/db/queries/jobs.ts';
import { eventually } from '../support/context.ts';
import { privateDatabase } from '../support/private-services.ts';
import { mode, unique, useServer } from './server.ts';

type Line = Record<string, unknown> & { msg?: string };
const logged: Line[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as Line) });

// Service mode: a database of its own, since mira_jobs counts every job record in it.
let pg: { url: string; drop(): Promise<void> } | undefined;
afterAll(async () => pg?.drop());
async function ownDatabase(): Promise<Record<string, string>> {
  if (mode !== 'service') return {};
  pg = await privateDatabase(process.env.DATABASE_URL!, 'mira_metrics');
  return { DATABASE_URL: pg.url };
}
const server = useServer(ownDatabase, { log });
const data = MiraClient.data;

/** The value of one sample of a Prometheus text scrape whose labels include `labels`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => has[k] === v)) total = (total ?? 0) + Number(m[3]);
  }
  return total ?? 0;
}

const scrape = async () => {
  const res = await fetch(`${server().url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
};

const png = () =>
  sharp({ create: { width: 32, height: 32, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } }).png().toBuffer();

let col: Schemas['Collection'];
beforeAll(async () => {
  const { admin, ctx } = server();
  const model = ctx.defaultModel.id;
  col = await data(admin.api.POST('/v1/collections', { body: { name: unique('metrics'), embedder: model, reranker: model } }));
});

describe('/metrics', () => {
  it('moves after an ingest and a search: request histogram by route, inference batches per graph, index size, queue depth', async () => {
    const { admin } = server();
    const before = await scrape();
    const uploads = 3;
    const ids: string[] = [];
    for (let i = 0; i < uploads; i++) ids.push((await admin.uploadImage(col.id, await png(), { wait: true })).image.id);
    const found = await data(admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a square', k: 2 } }));
    expect(found.reranked, JSON.stringify(found)).toBe(true);
    await data(admin.api.GET('/v1/images/{id}', { params: { path: { id: ids[0]! } } }));
    const after = await scrape();

    const search = { method: 'POST', route: '/v1/search', status: '200' };
    expect(sample(after, 'mira_http_request_duration_seconds_count', search), 'one more search request').toBe(sample(before, 'mira_http_request_duration_seconds_count', search) + 1);
    const upload = { method: 'POST', route: '/v1/collections/:id/images', status: '200' };
    const uploadsSeen = sample(after, 'mira_http_request_duration_seconds_count', upload) - sample(before, 'mira_http_request_duration_seconds_count', upload);
    expect(uploadsSeen, after.split('\n').filter((l) => l.startsWith('mira_http_request_duration_seconds_count')).join('\n')).toBe(uploads);
    // Routes are labelled by pattern: an image id never becomes a label value.
    expect(sample(after, 'mira_http_request_duration_seconds_count', { method: 'GET', route: '/v1/images/:id' })).toBeGreaterThanOrEqual(1);
    for (const id of ids) expect(after).not.toContain(`route="/v1/images/${id}"`);

    for (const graph of ['vision', 'text', 'itm']) {
      const batches = sample(after, 'mira_inference_batch_size_count', { graph }) - sample(before, 'mira_inference_batch_size_count', { graph });
      const items = sample(after, 'mira_inference_batch_size_sum', { graph }) - sample(before, 'mira_inference_batch_size_sum', { graph });
      expect(batches, `${graph} batches`).toBeGreaterThanOrEqual(1);
      expect(items, `${graph} items`).toBeGreaterThanOrEqual(batches);
      expect(sample(after, 'mira_inference_queue_wait_seconds_count', { graph }), `${graph} queue waits`).toBe(sample(after, 'mira_inference_batch_size_count', { graph }));
    }
    expect(sample(after, 'mira_inference_batch_size_sum', { graph: 'vision' }) - sample(before, 'mira_inference_batch_size_sum', { graph: 'vision' }), 'every uploaded image went through the vision graph').toBeGreaterThanOrEqual(uploads);

    // A service-mode API replica follows Postgres, so its index may trail the uploads a moment.
    await eventually('the uploads in the index', async () => (sample(await scrape(), 'mira_index_vectors', { collection: col.id }) === uploads ? true : undefined));
    expect(after).toMatch(/^mira_queue_depth\{kind="ingest"\} \d+$/m);
  });

  it('shows deletions as the tombstone ratio of the index', async () => {
    const { admin } = server();
    // A replica reports the indexes it has open; a search opens this collection's.
    await data(admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'x', k: 1, rerank: { enabled: false } } }));
    const live = sample(await scrape(), 'mira_index_vectors', { collection: col.id });
    // One deletion among six or more vectors stays under the compaction threshold (a ratio of 0.2),
    // so no compaction clears the tombstone before the scrape.
    const added: string[] = [];
    for (let i = 0; i < Math.max(1, 6 - live); i++) added.push((await admin.uploadImage(col.id, await png(), { wait: true })).image.id);
    const vectors = live + added.length;
    await eventually('the new images in the index', async () => (sample(await scrape(), 'mira_index_vectors', { collection: col.id }) === vectors ? true : undefined));
    const res = await admin.api.DELETE('/v1/images/{id}', { params: { path: { id: added[0]! } } });
    expect(res.response.status).toBe(204);
    // Service replicas follow Postgres on their own; an embedded process applies deletions with its next write.
    await admin.uploadImage(col.id, await png(), { wait: true });
    let last = '';
    const text = await eventually('the deletion and the next image in the index', async () => {
      const t = (last = await scrape());
      return sample(t, 'mira_index_vectors', { collection: col.id }) === vectors && sample(t, 'mira_index_tombstone_ratio', { collection: col.id }) > 0 ? t : undefined;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; expected ${vectors} vectors and one tombstone:\n${last.split('\n').filter((l) => l.includes(col.id)).join('\n')}`);
    });
    expect(sample(text, 'mira_index_tombstone_ratio', { collection: col.id }), 'one tombstone among the live vectors').toBeCloseTo(1 / (vectors + 1), 6);
  });

  it('counts job records by kind and state', async () => {
    const { db } = server();
    const id = unique('metrics-job');
    const queued = { kind: 'extract', state: 'queued' };
    const completed = { kind: 'extract', state: 'completed' };
    const start = await scrape();
    await createJob(db, { id, kind: 'extract', collectionId: col.id, payload: {} });
    const created = await scrape();
    expect(sample(created, 'mira_jobs', queued)).toBe(sample(start, 'mira_jobs', queued) + 1);
    await updateJob(db, id, { state: 'completed' });
    const done = await scrape();
    expect(sample(done, 'mira_jobs', queued)).toBe(sample(start, 'mira_jobs', queued));
    expect(sample(done, 'mira_jobs', completed)).toBe(sample(start, 'mira_jobs', completed) + 1);
  });
});

describe('logs', () => {
  it('echo a safe X-Request-Id and put it on the request line with the route pattern; replace an unsafe one', async () => {
    const { admin } = server();
    const given = unique('req');
    const ok = await admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'x', k: 1 }, headers: { 'X-Request-Id': given } });
    expect(ok.response.headers.get('x-request-id')).toBe(given);
    const line = await eventually('the request line', async () => logged.find((l) => l.msg === 'request' && l.requestId === given));
    expect(line).toMatchObject({ route: '/v1/search', path: '/v1/search', method: 'POST', status: 200 });
    expect(typeof line.ms).toBe('number');

    const hostile = 'a b\n{"level":60}';
    const replaced = await fetch(`${server().url}/healthz`, { headers: { 'X-Request-Id': encodeURIComponent(hostile).padEnd(80, 'x') } });
    const id = replaced.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(logged.some((l) => l.msg === 'request' && l.requestId === id)).toBe(true);
  });

  it('put the job id, kind and attempt on every line a job writes', async () => {
    const { admin } = server();
    const { image } = await admin.uploadImage(col.id, await png(), { wait: true });
    const line = await eventually('the job line', async () => logged.find((l) => l.msg === 'image extracted' && l.imageId === image.id));
    expect(line).toMatchObject({ kind: 'ingest', attempt: 1 });
    expect(String(line.jobId)).toContain(col.id);
  });
});

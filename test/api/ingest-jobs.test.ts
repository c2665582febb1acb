import { randomInt } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { deleteImage, getImage, insertImage } from '../../src/db/queries/images.ts';
import { inspectImage } from '../../src/ingest/inspect.ts';
import { ingestJobId, parseIngestJobId } from '../../src/ingest/pipeline.ts';
import { problemOf, unique, useServer } from './server.ts';

const server = useServer();
const data = MiraClient.data;

const png = () =>
  sharp({ create: { width: 24, height: 24, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } })
    .png()
    .toBuffer();

async function collection() {
  const model = server().ctx.defaultModel.id;
  return data(server().admin.api.POST('/v1/collections', { body: { name: unique('ingest-jobs'), embedder: model } }));
}

/**
 * The row an upload would write, without its original in the blob store and without a queued job:
 * what a crash between the row and the queue leaves behind.
 */
async function rowWithoutOriginal(collectionId: string) {
  const info = await inspectImage(await png(), server().ctx.limits);
  const { image } = await insertImage(server().db, {
    collectionId,
    sha256: info.sha256,
    source: 'upload:lost.png',
    mime: info.mime,
    width: info.width,
    height: info.height,
    bytes: info.bytes,
  });
  return { image, jobId: ingestJobId(collectionId, info.sha256) };
}

describe('ingest job ids', () => {
  it('parseIngestJobId reads back what ingestJobId writes, and nothing else', () => {
    const collectionId = '0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10';
    const sha256 = 'ab'.repeat(32);
    expect(parseIngestJobId(ingestJobId(collectionId, sha256))).toEqual({ collectionId, sha256 });
    for (const id of ['ingest_x_y', `ingest_${collectionId}_${'ab'.repeat(31)}`, `extract_${collectionId}_${sha256}`, `ingest_${collectionId}_${sha256}_`]) {
      expect(parseIngestJobId(id), id).toBeUndefined();
    }
  });

  it('the job id an upload returns resolves, and waitForJob sees it completed with the image', async () => {
    const { admin } = server();
    const col = await collection();
    const res = await admin.uploadImage(col.id, await png());
    expect(res.jobId, JSON.stringify(res)).toBe(ingestJobId(col.id, res.image.sha256));
    const first = await admin.getJob(res.jobId!);
    expect(first, JSON.stringify(first)).toMatchObject({ id: res.jobId, kind: 'ingest', collectionId: col.id, result: { imageId: res.image.id } });
    expect(['queued', 'running', 'completed'], JSON.stringify(first)).toContain(first.state);

    const seen: number[] = [];
    const done = await admin.waitForJob(res.jobId!, { timeoutMs: 30_000, onProgress: (p) => seen.push(p.done) });
    expect(done, JSON.stringify(done)).toMatchObject({ state: 'completed', error: null, progress: { done: 1, total: 1 }, result: { imageId: res.image.id, status: 'ready' } });
    expect(done.finishedAt, JSON.stringify(done)).not.toBeNull();
    expect(seen.at(-1)).toBe(1);
    expect((await admin.getImage(res.image.id)).status).toBe('ready');
  });

  it('an image waiting for extraction reads as queued', async () => {
    const col = await collection();
    const { image, jobId } = await rowWithoutOriginal(col.id);
    const job = await server().admin.getJob(jobId);
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'queued', progress: { done: 0, total: 1 }, finishedAt: null, result: { imageId: image.id, status: 'pending' } });
  });

  it('an image whose extraction fails is a failed job with the reason', async () => {
    const { ctx, admin } = server();
    const col = await collection();
    const { image, jobId } = await rowWithoutOriginal(col.id);
    // Queued as the pipeline queues it: the worker finds no original and fails the image for good.
    await ctx.queue.enqueue('ingest', { collectionId: col.id, imageId: image.id }, { jobId });
    const job = await admin.waitForJob(jobId, { timeoutMs: 30_000 });
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'failed', kind: 'ingest', result: { imageId: image.id, status: 'failed' } });
    expect(job.error, JSON.stringify(job)).toMatch(/^blob_missing: /);
    expect((await getImage(server().db, image.id))?.error).toBe(job.error);
  });

  it('the job of a deleted image is 404', async () => {
    const { admin, db } = server();
    const col = await collection();
    const res = await admin.uploadImage(col.id, await png(), { wait: true });
    expect(await deleteImage(db, res.image.id)).toBe(true);
    const err = await problemOf(admin.getJob(ingestJobId(col.id, res.image.sha256)));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 404, code: 'not_found' });
  });

  it("a key limited to another collection gets 404; a read key of the image's collection sees it", async () => {
    const { admin, client } = server();
    const [mine, other] = [await collection(), await collection()];
    const res = await admin.uploadImage(mine.id, await png(), { wait: true });
    const jobId = ingestJobId(mine.id, res.image.sha256);
    const outsider = await client(['read', 'write'], [other.id]);
    const err = await problemOf(outsider.getJob(jobId));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 404, code: 'not_found' });
    expect(err.problem.detail, 'the answer does not say the collection exists').toBe(`No job ${jobId}.`);
    const reader = await client(['read'], [mine.id]);
    expect(await reader.getJob(jobId)).toMatchObject({ id: jobId, state: 'completed' });
  });

  it('an id shaped like an ingest id for bytes the collection never had is 404', async () => {
    const col = await collection();
    const err = await problemOf(server().admin.getJob(ingestJobId(col.id, '0'.repeat(64))));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 404, code: 'not_found' });
  });
});

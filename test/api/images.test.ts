import { randomInt } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { problemOf, unique, useServer } from './server.ts';

const MAX_IMAGE_BYTES = 256 * 1024;
const server = useServer({ MIRA_MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES) });
const data = MiraClient.data;

/** A small PNG of one random colour: new bytes for every call. */
const png = () =>
  sharp({ create: { width: 40, height: 30, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } })
    .png()
    .toBuffer();

async function collection(client = server().admin) {
  const model = server().ctx.defaultModel.id;
  return data(client.api.POST('/v1/collections', { body: { name: unique('images'), embedder: model, reranker: model } }));
}

describe('image ingestion', () => {
  it('an upload with wait=true answers 200 ready; the same bytes again are the same image', async () => {
    const { admin } = server();
    const col = await collection();
    const bytes = await png();
    const first = await admin.uploadImage(col.id, bytes, { wait: true, metadata: { sku: 'A-1' }, filename: 'a.png' });
    expect(first.image, JSON.stringify(first)).toMatchObject({ status: 'ready', collectionId: col.id, width: 40, height: 30, metadata: { sku: 'A-1' }, source: 'upload:a.png' });
    expect(first.created).toBe(true);
    expect(first.jobId).toBeNull();
    const again = await admin.uploadImage(col.id, bytes);
    expect(again).toMatchObject({ created: false, image: { id: first.image.id, status: 'ready' } });
  });

  it('an upload without wait answers 202 with a job id, and the image becomes ready', async () => {
    const { admin } = server();
    const col = await collection();
    const res = await admin.uploadImage(col.id, await png());
    expect(['pending', 'ready']).toContain(res.image.status);
    if (res.image.status === 'pending') expect(res.jobId).toBeTruthy();
    const ready = await admin.waitForImage(res.image.id, { timeoutMs: 30_000 });
    expect(ready.status).toBe('ready');
  });

  it('bytes that are not an image are refused with their problem and leave nothing behind', async () => {
    const { admin } = server();
    const col = await collection();
    const err = await problemOf(admin.uploadImage(col.id, Buffer.from('definitely not an image')));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 415, code: 'image_unsupported' });
    const page = await data(admin.api.GET('/v1/collections/{id}/images', { params: { path: { id: col.id }, query: {} } }));
    expect(page.items).toEqual([]);
  });

  it('an image over the byte cap is 413', async () => {
    const { admin } = server();
    const col = await collection();
    const big = await sharp({ create: { width: 600, height: 600, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
    expect(big.length).toBeGreaterThan(MAX_IMAGE_BYTES);
    const err = await problemOf(admin.uploadImage(col.id, big));
    expect(err.status, JSON.stringify(err.problem)).toBe(413);
  });

  it('a URL on a private address is refused (403 address_refused)', async () => {
    const { admin } = server();
    const col = await collection();
    const err = await problemOf(
      admin.api.POST('/v1/collections/{id}/images/url', { params: { path: { id: col.id }, query: {} }, body: { url: 'http://127.0.0.1:9/x.png' } }),
    );
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 403, code: 'address_refused' });
  });

  it('a batch answers per item: good items are queued, bad ones carry their own error', async () => {
    const { admin } = server();
    const col = await collection();
    const res = await data(
      admin.api.POST('/v1/collections/{id}/images/batch', {
        params: { path: { id: col.id } },
        body: { items: [{ url: 'http://10.0.0.1/a.png' }, { path: 'x.png' }] },
      }),
    );
    expect(res.failed, JSON.stringify(res)).toBe(2);
    expect(res.items.map((i) => i.error?.code)).toEqual(['address_refused', 'path_ingest_disabled']);
  });
});

describe('images', () => {
  it('are listed by metadata with cursor pages, updated, downloaded and deleted', async () => {
    const { admin } = server();
    const col = await collection();
    const uploaded = [];
    for (let i = 0; i < 3; i++) uploaded.push(await admin.uploadImage(col.id, await png(), { metadata: { n: i, color: i < 2 ? 'red' : 'blue' } }));
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await data(
        admin.api.GET('/v1/collections/{id}/images', { params: { path: { id: col.id }, query: { metadata: '{"color":"red"}', limit: 1, ...(cursor ? { cursor } : {}) } } }),
      );
      ids.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(ids).toEqual(uploaded.slice(0, 2).map((u) => u.image.id));

    const target = uploaded[0]!.image;
    const patched = await data(admin.api.PATCH('/v1/images/{id}', { params: { path: { id: target.id } }, body: { metadata: { color: 'green' } } }));
    expect(patched.metadata).toEqual({ color: 'green' });

    const original = await fetch(`${server().url}${target.originalUrl}`, { headers: { authorization: authOf(admin) } });
    expect(original.headers.get('content-type')).toBe('image/png');
    expect(original.headers.get('content-security-policy')).toContain('sandbox');
    expect((await sharp(Buffer.from(await original.arrayBuffer())).metadata()).width).toBe(40);
    const thumb = await fetch(`${server().url}${target.thumbnailUrl}`, { headers: { authorization: authOf(admin) } });
    expect(thumb.headers.get('content-type')).toBe('image/webp');

    const { response } = await admin.api.DELETE('/v1/images/{id}', { params: { path: { id: target.id } } });
    expect(response.status).toBe(204);
    expect((await problemOf(admin.getImage(target.id))).status).toBe(404);
  });

  it('deleting an image removes its bytes and token features, unless another collection holds the same image', async () => {
    const { admin, ctx } = server();
    const model = ctx.defaultModel.id;
    const [a, b] = [await collection(), await collection()];
    const [own, shared] = [await png(), await png()];
    const ownA = (await admin.uploadImage(a.id, own, { wait: true })).image;
    const sharedA = (await admin.uploadImage(a.id, shared, { wait: true })).image;
    const sharedB = (await admin.uploadImage(b.id, shared, { wait: true })).image;
    const stored = async (sha: string) => [await ctx.blobs.has(sha, 'original'), await ctx.blobs.has(sha, 'thumbnail')];
    const tokens = (id: string) => ctx.features.getMany(model, [id])[0];
    expect(await stored(ownA.sha256)).toEqual([true, true]);
    expect(tokens(ownA.id)).toBeDefined();

    await admin.api.DELETE('/v1/images/{id}', { params: { path: { id: ownA.id } } });
    expect(await stored(ownA.sha256)).toEqual([false, false]);
    expect(tokens(ownA.id)).toBeUndefined();

    await admin.api.DELETE('/v1/images/{id}', { params: { path: { id: sharedA.id } } });
    expect(await stored(sharedA.sha256)).toEqual([true, true]); // b holds the same bytes
    expect(tokens(sharedA.id)).toBeUndefined();
    const original = await fetch(`${server().url}${sharedB.originalUrl}`, { headers: { authorization: authOf(admin) } });
    expect(original.status).toBe(200);

    // Deleting the collection answers first; its blobs and token features go right after.
    const { response } = await admin.api.DELETE('/v1/collections/{id}', { params: { path: { id: b.id } } });
    expect(response.status).toBe(204);
    await vi.waitFor(async () => expect(await stored(sharedB.sha256)).toEqual([false, false]), { timeout: 10_000 });
    expect(tokens(sharedB.id)).toBeUndefined();
  });

  it('a bad metadata filter names the field', async () => {
    const { admin } = server();
    const col = await collection();
    const err = await problemOf(admin.api.GET('/v1/collections/{id}/images', { params: { path: { id: col.id }, query: { metadata: '[1,2' } } }));
    expect(err.problem.errors?.[0], JSON.stringify(err.problem)).toMatchObject({ location: 'query', pointer: '/metadata' });
  });
});

describe('image security', () => {
  it('a read key cannot upload, update or delete (403)', async () => {
    const { admin, client } = server();
    const col = await collection();
    const { image } = await admin.uploadImage(col.id, await png());
    const reader = await client(['read']);
    expect((await problemOf(reader.uploadImage(col.id, await png()))).status).toBe(403);
    expect((await problemOf(reader.api.PATCH('/v1/images/{id}', { params: { path: { id: image.id } }, body: { metadata: {} } }))).status).toBe(403);
    expect((await problemOf(reader.api.DELETE('/v1/images/{id}', { params: { path: { id: image.id } } }))).status).toBe(403);
    expect((await reader.getImage(image.id)).id).toBe(image.id);
  });

  it("a key for collection A cannot see B's images by id, list or download them (404)", async () => {
    const { admin, client } = server();
    const [a, b] = [await collection(), await collection()];
    const { image } = await admin.uploadImage(b.id, await png());
    const onlyA = await client(['read', 'write'], [a.id]);
    expect((await problemOf(onlyA.getImage(image.id))).status).toBe(404);
    expect((await problemOf(onlyA.api.GET('/v1/collections/{id}/images', { params: { path: { id: b.id }, query: {} } }))).status).toBe(404);
    expect((await problemOf(onlyA.uploadImage(b.id, await png()))).status).toBe(404);
    const res = await fetch(`${server().url}${image.thumbnailUrl}`, { headers: { authorization: authOf(onlyA) } });
    expect(res.status).toBe(404);
  });
});

function authOf(client: MiraClient): string {
  return (client as unknown as { headers: Record<string, string> }).headers.authorization!;
}

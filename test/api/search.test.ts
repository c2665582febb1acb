import { randomInt } from 'node:crypto';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { MiraClient, type Schemas } from '../../sdk/src/index.ts';
import { SEARCH_LIMITS } from '../../src/search/limits.ts';
import { LM_WEIGHT } from '../../src/search/score.ts';
import { registerBundle } from '../../src/models/registry.ts';
import { bundleCopy } from '../inference/helpers.ts';
import { problemOf, unique, useServer } from './server.ts';

const server = useServer();
const data = MiraClient.data;

const png = () =>
  sharp({ create: { width: 32, height: 32, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } })
    .png()
    .toBuffer();

/** One collection (tiny BLIP as embedder, reranker and captioner) with four ready images. */
let col: Schemas['Collection'];
let ids: string[] = [];
let queryImage: Buffer;
beforeAll(async () => {
  const { admin, ctx } = server();
  const model = ctx.defaultModel.id;
  col = await data(admin.api.POST('/v1/collections', { body: { name: unique('search'), embedder: model, reranker: model, captioner: model } }));
  for (let i = 0; i < 4; i++) {
    const bytes = await png();
    if (i === 0) queryImage = bytes;
    ids.push((await admin.uploadImage(col.id, bytes, { wait: true, metadata: { n: i, half: i < 2 ? 'low' : 'high' } })).image.id);
  }
});

describe('search', () => {
  it('by text: re-ranked by default (ITM + ITC + LM), with ITC, ITM and LM scores, best first', async () => {
    const res = await data(server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a red square', k: 3 } }));
    expect(res.reranked, JSON.stringify(res)).toBe(true);
    expect(res.rerankRule).toBe('itm+lm');
    expect(res.results).toHaveLength(3);
    for (const r of res.results) {
      expect(ids).toContain(r.id);
      expect(r.itmScore).toBeGreaterThanOrEqual(0);
      expect(r.lmScore).toBeLessThan(0);
      expect(r.thumbnailUrl).toBe(`/v1/images/${r.id}/thumbnail`);
    }
    const scores = res.results.map((r) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it("rule itm is BLIP's score; itm+lm adds LM_WEIGHT × the LM log-likelihood to it, image by image", async () => {
    const ask = (rule: 'itm' | 'itm+lm') =>
      data(server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a small blue circle', k: 4, rerank: { rule, candidates: 4 } } }));
    const [itm, lm] = await Promise.all([ask('itm'), ask('itm+lm')]);
    expect([itm.rerankRule, lm.rerankRule]).toEqual(['itm', 'itm+lm']);
    expect(itm.results.map((r) => r.id).sort()).toEqual([...ids].sort());
    for (const r of itm.results) expect(r.lmScore).toBeUndefined();
    const byId = new Map(itm.results.map((r) => [r.id, r]));
    for (const r of lm.results) {
      const blip = byId.get(r.id)!;
      expect(r.itmScore).toBeCloseTo(blip.itmScore!, 6);
      expect(r.score - blip.score).toBeCloseTo(LM_WEIGHT * r.lmScore!, 4);
    }
  });

  it('without re-ranking: ITC only, and a metadata filter', async () => {
    const res = await data(
      server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'a picture', k: 10, rerank: { enabled: false }, filter: { half: 'high' } } }),
    );
    expect(res.reranked).toBe(false);
    expect(res.results.map((r) => r.id).sort()).toEqual(ids.slice(2).sort());
    for (const r of res.results) expect(r.itmScore).toBeUndefined();
  });

  it('by an image in the collection (not returned itself), by base64 and by upload', async () => {
    const { admin } = server();
    const byId = await data(admin.api.POST('/v1/search', { body: { collectionId: col.id, imageId: ids[0]!, k: 10 } }));
    expect(byId.results.map((r) => r.id)).not.toContain(ids[0]);
    const byBase64 = await data(admin.api.POST('/v1/search', { body: { collectionId: col.id, image: queryImage.toString('base64'), k: 1 } }));
    expect(byBase64.results[0]?.id, 'the same bytes are their own best match').toBe(ids[0]);
    const byUpload = await admin.searchByImage({ collectionId: col.id, k: 1 }, queryImage);
    expect(byUpload.results[0]?.id).toBe(ids[0]);
  });

  it('captions: true captions the results', async () => {
    const res = await data(server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'anything', k: 2, captions: true } }));
    for (const r of res.results) expect(typeof r.caption, JSON.stringify(r)).toBe('string');
  });
});

describe('search errors', () => {
  it('a huge k is 400 naming k', async () => {
    const err = await problemOf(server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'x', k: 1_000_000 } }));
    expect(err.problem.errors?.[0], JSON.stringify(err.problem)).toMatchObject({ location: 'body', pointer: '/k' });
    expect(err.problem.detail).toContain(String(SEARCH_LIMITS.maxK));
  });

  it('two queries, or none, are 400', async () => {
    const two = await problemOf(server().admin.api.POST('/v1/search', { body: { collectionId: col.id, text: 'x', imageId: ids[0]! } }));
    expect(two, JSON.stringify(two.problem)).toMatchObject({ status: 400, code: 'invalid_request' });
    const none = await problemOf(server().admin.api.POST('/v1/search', { body: { collectionId: col.id } }));
    expect(none.problem.detail).toMatch(/exactly one of text, imageId or image/);
  });

  it('rule itm+lm with a reranker that has its own caption encoder is 400 rerank_rule_unsupported; its default is itm', async () => {
    const { admin, ctx } = server();
    const copy = await bundleCopy((m) => {
      m.name = unique('own-caption-encoder');
      m.graphs.captionVision = { file: m.graphs.vision.file, inputs: { pixelValues: m.graphs.vision.inputs.pixelValues }, outputs: { imageEmbeds: m.graphs.vision.outputs.imageEmbeds } };
    }, ctx.defaultModel.path);
    let other: Schemas['Collection'] | undefined;
    try {
      const { model } = await registerBundle(ctx.db, copy.dir);
      other = await data(admin.api.POST('/v1/collections', { body: { name: unique('own-encoder'), embedder: ctx.defaultModel.id, reranker: model.id } }));
      const err = await problemOf(admin.api.POST('/v1/search', { body: { collectionId: other.id, text: 'x', rerank: { rule: 'itm+lm' } } }));
      expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 400, code: 'rerank_rule_unsupported' });
      const res = await data(admin.api.POST('/v1/search', { body: { collectionId: other.id, text: 'x' } }));
      expect(res).toMatchObject({ reranked: true, rerankRule: 'itm' });
    } finally {
      // Other tests' servers would otherwise try to load this collection's reranker, whose files go now.
      if (other) await admin.api.DELETE('/v1/collections/{id}', { params: { path: { id: other.id } } });
      await copy.cleanup();
    }
  });

  it('bad multipart params name the field under /params', async () => {
    const err = await problemOf(server().admin.searchByImage({ collectionId: col.id, k: 0 }, queryImage));
    expect(err.problem.errors?.[0], JSON.stringify(err.problem)).toMatchObject({ location: 'form', pointer: '/params/k' });
  });

  it("a key for another collection cannot search this one, by text or by one of its image ids (404)", async () => {
    const { admin, client, ctx } = server();
    const other = await data(admin.api.POST('/v1/collections', { body: { name: unique('other'), embedder: ctx.defaultModel.id } }));
    const onlyOther = await client(['read'], [other.id]);
    const err = await problemOf(onlyOther.api.POST('/v1/search', { body: { collectionId: col.id, text: 'x' } }));
    expect(err.status, JSON.stringify(err.problem)).toBe(404);
    const byId = await problemOf(onlyOther.api.POST('/v1/search', { body: { collectionId: other.id, imageId: ids[0]! } }));
    expect(byId.status, JSON.stringify(byId.problem)).toBe(404);
  });
});

import { randomInt } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { MiraClient } from '../../sdk/src/index.ts';
import { ownModel, problemOf, useServer } from './server.ts';

const server = useServer();

const png = () =>
  sharp({ create: { width: 24, height: 24, channels: 3, background: { r: randomInt(256), g: randomInt(256), b: randomInt(256) } } })
    .png()
    .toBuffer();

describe('captions', () => {
  it('captions with greedy, beam, beam-itm and seeded nucleus decoding', async () => {
    const { admin, ctx } = server();
    const image = await png();
    for (const method of ['greedy', 'beam', 'beam-itm'] as const) {
      const res = await admin.caption(image, { method, maxLength: 8 });
      expect(res.model).toBe(ctx.defaultModel.id);
      expect(res.caption, method).toBeTypeOf('string');
    }
    const a = await admin.caption(image, { method: 'nucleus', seed: 7, maxLength: 8 });
    const b = await admin.caption(image, { method: 'nucleus', seed: 7, maxLength: 8 });
    expect(a.caption, 'same seed, same caption').toBe(b.caption);
  });

  it('a model without a decoder, or beam-itm without an ITM graph, is 422 model_unsuitable; a bad option names the field', async () => {
    const { admin, db } = server();
    const clip = await ownModel(db);
    const err = await problemOf(admin.caption(await png(), { model: clip.id }));
    expect(err, JSON.stringify(err.problem)).toMatchObject({ status: 422, code: 'model_unsuitable' });
    const noItm = await ownModel(db, { graphs: ['vision', 'text', 'decoder'] });
    const itmErr = await problemOf(admin.caption(await png(), { model: noItm.id, method: 'beam-itm' }));
    expect(itmErr, JSON.stringify(itmErr.problem)).toMatchObject({ status: 422, code: 'model_unsuitable' });
    expect(itmErr.problem.detail).toContain('beam-itm');
    const bad = await problemOf(admin.caption(await png(), { numBeams: 99 }));
    expect(bad.problem.errors?.[0], JSON.stringify(bad.problem)).toMatchObject({ location: 'form', pointer: '/numBeams' });
  });
});

describe('classify', () => {
  it('scores every label, summing to 1, best first', async () => {
    const res = await server().admin.classify(await png(), ['a cat', 'a dog', 'a red square']);
    expect(res.labels.map((l) => l.label).sort()).toEqual(['a cat', 'a dog', 'a red square']);
    expect(res.labels.reduce((s, l) => s + l.score, 0)).toBeCloseTo(1, 5);
    const scores = res.labels.map((l) => l.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
  });

  it('labels that are not a JSON array are 400 naming labels', async () => {
    const { admin } = server();
    const err = await problemOf(admin.upload('/v1/classify', await png(), { labels: 'cat, dog' }));
    expect(err.problem.errors?.[0], JSON.stringify(err.problem)).toMatchObject({ location: 'form', pointer: '/labels' });
  });
});

describe('embeddings', () => {
  it('returns one unit vector per text and per image, in order', async () => {
    const { admin, ctx } = server();
    const res = await MiraClient.data(
      admin.api.POST('/v1/embeddings', { body: { texts: ['a cat', 'a dog'], images: [(await png()).toString('base64')] } }),
    );
    expect(res.dim).toBe(ctx.defaultModel.embedDim);
    expect(res.texts).toHaveLength(2);
    expect(res.images).toHaveLength(1);
    for (const v of [...res.texts, ...res.images]) {
      expect(v).toHaveLength(res.dim);
      expect(Math.hypot(...v)).toBeCloseTo(1, 3);
    }
  });

  it('an empty request and too many texts are 400', async () => {
    const { admin } = server();
    const empty = await problemOf(admin.api.POST('/v1/embeddings', { body: {} }));
    expect(empty.status, JSON.stringify(empty.problem)).toBe(400);
    const many = await problemOf(admin.api.POST('/v1/embeddings', { body: { texts: Array.from({ length: 300 }, () => 'x') } }));
    expect(many.problem.errors?.[0], JSON.stringify(many.problem)).toMatchObject({ pointer: '/texts' });
  });
});

import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/inference/bundle.ts';
import { Runtime } from '../../src/inference/runtime.ts';
import { parseCaption } from '../../src/scenes/captions.ts';
import { renderScene } from '../../src/scenes/render.ts';
import type { Scene } from '../../src/scenes/scene.ts';

// The committed default model (issue 3): within the 25 MB limit, a valid bundle that Mira's
// runtime opens, and its captions are sentences of the scene grammar. Its quality figures come
// from `npm run eval` (BENCHMARKS.md), not from here.
const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/default');
const LIMIT_BYTES = 25_000_000;

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await sizeOf(p) : (await stat(p)).size;
  }
  return total;
}

describe('models/default', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.open(DIR, { threads: 1, intraOpThreads: 1 });
  }, 60_000);
  afterAll(() => rt?.close());

  it('is at most 25 MB, graphs, tokenizer, weights and curves together', async () => {
    expect(await sizeOf(DIR)).toBeLessThanOrEqual(LIMIT_BYTES);
  });

  it('says how it was trained and validated', async () => {
    const about = (await readManifest(DIR)).about as { training?: Record<string, unknown>; validation?: Record<string, unknown> } | undefined;
    expect(about?.training, 'manifest about.training').toMatchObject({ seed: expect.any(Number) });
    expect(about?.validation, 'manifest about.validation').toBeTypeOf('object');
  });

  it('captions a generated scene with a sentence that parses back to a scene', async () => {
    const scene: Scene = { objects: [{ size: 'large', color: 'red', shape: 'circle' }, { size: 'small', color: 'blue', shape: 'square' }], relations: [{ subject: 0, relation: 'left', object: 1 }] };
    const png = await renderScene(scene, { size: 64 });
    const { text } = await rt.caption(new Uint8Array(png), { method: 'beam' });
    expect(parseCaption(text), text).not.toBeNull();
  });

  describe('scoring captions', () => {
    const scene: Scene = { objects: [{ size: 'large', color: 'red', shape: 'circle' }, { size: 'small', color: 'blue', shape: 'square' }], relations: [{ subject: 0, relation: 'left', object: 1 }] };
    let png: Buffer;
    let tokens: Float32Array;
    beforeAll(async () => {
      png = await renderScene(scene, { size: 64 });
      tokens = await rt.captionTokens(await rt.pixels(new Uint8Array(png)));
    });

    it("the LM head's log-likelihood of the greedy caption is the log-probability the search found", async () => {
      const g = await rt.caption({ tokens }, { method: 'greedy', minLength: 0 });
      expect(rt.tokenizer.encodePrompt(rt.manifest.caption!.prompt + g.text).slice(-g.ids.length), 'the caption re-tokenizes to its ids').toEqual(g.ids);
      const [ll] = await rt.captionLogLikelihoods([g.text], [tokens]);
      expect(ll).toBeCloseTo(g.logProb, 3);
    });

    it('the true caption is likelier than one with its colors or its relation swapped, in one batch or one at a time', async () => {
      const texts = ['a large red circle to the left of a small blue square', 'a large blue circle to the left of a small red square', 'a large red circle to the right of a small blue square'];
      const batch = await rt.captionLogLikelihoods(texts, texts.map(() => tokens));
      const single = await Promise.all(texts.map(async (t) => (await rt.captionLogLikelihoods([t], [tokens]))[0]!));
      for (let i = 0; i < texts.length; i++) expect(batch[i]).toBeCloseTo(single[i]!, 4);
      expect(batch[0]).toBeGreaterThan(batch[1]!);
      expect(batch[0]).toBeGreaterThan(batch[2]!);
    });

    it('beam-itm keeps the beam hypothesis with the best ITM logit + length-normalised log-probability', async () => {
      const c = await rt.caption(new Uint8Array(png), { method: 'beam-itm', numBeams: 4 });
      const prefix = rt.tokenizer.encodePrompt(rt.manifest.caption!.prompt);
      const hyps = (await rt.generate(tokens, prefix, { method: 'beam', numBeams: 4 })).hypotheses!;
      const texts = hyps.map((h) => rt.tokenizer.decode(h.ids));
      const itm = await rt.itmScoresForTexts(texts, tokens);
      const scores = hyps.map((h, i) => itm[i]!.logit + h.score);
      expect(texts).toContain(c.text);
      expect(scores[texts.indexOf(c.text)]).toBeCloseTo(Math.max(...scores), 5);
      expect(parseCaption(c.text), c.text).not.toBeNull();
    });
  });
});

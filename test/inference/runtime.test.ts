import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, type ImageEmbedding } from '../../src/inference/runtime.ts';
import { bundleCopy, fakePixels, maxAbsDiff, TINY_BLIP } from './helpers.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await Runtime.open(TINY_BLIP, { threads: 2, intraOpThreads: 1, maxWaitMs: 5 });
});
afterAll(() => rt?.close());

describe("BLIP's special tokens", () => {
  it('retrieval text starts with [CLS] and ends with [SEP]', () => {
    const st = rt.manifest.tokenizer.specialTokens;
    const ids = rt.tokenizer.encode('a red circle');
    expect(ids[0]).toBe(st.cls);
    expect(ids[ids.length - 1]).toBe(st.eos);
  });

  it('ITM replaces the first token with [ENC]', () => {
    const st = rt.manifest.tokenizer.specialTokens;
    const plain = rt.tokenizer.encode('a red circle');
    const itm = rt.tokenizer.encodeForItm('a red circle');
    expect(itm[0]).toBe(st.enc);
    expect(itm.slice(1)).toEqual(plain.slice(1));
  });

  it('the decoder prompt starts with [DEC] and has no trailing [SEP]', () => {
    const st = rt.manifest.tokenizer.specialTokens;
    const ids = rt.tokenizer.encodePrompt('a picture of ');
    expect(ids[0]).toBe(st.bos);
    expect(ids).not.toContain(st.eos);
    expect(rt.tokenizer.decode(ids)).toBe('a picture of');
  });

  it('long texts are cut to maxLength and keep their final [SEP]', () => {
    const ids = rt.tokenizer.encode('a red circle '.repeat(40));
    expect(ids.length).toBe(rt.tokenizer.maxLength);
    expect(ids[ids.length - 1]).toBe(rt.manifest.tokenizer.specialTokens.eos);
  });
});

describe('batching equivalence', () => {
  const texts = ['a red circle', 'a large blue square to the left of a small star', 'green', 'a triangle above a circle', 'the star'];

  it('text features batched with others equal the features computed one at a time', async () => {
    const serial: Float32Array[] = [];
    for (const t of texts) serial.push((await rt.embedTexts([t]))[0]!);
    const concurrent = await Promise.all(texts.map((t) => rt.embedTexts([t]).then((r) => r[0]!)));
    concurrent.forEach((f, i) => expect(maxAbsDiff(f, serial[i]!), texts[i]).toBeLessThan(1e-5));
  });

  it('image features and tokens batched with others equal the ones computed one at a time', async () => {
    const s = rt.manifest.preprocess.size;
    const px = Array.from({ length: 9 }, (_, i) => fakePixels(i, s));
    const serial: ImageEmbedding[] = [];
    for (const p of px) serial.push(await rt.embedPixels(p));
    const concurrent = await Promise.all(px.map((p) => rt.embedPixels(p)));
    concurrent.forEach((e, i) => {
      expect(maxAbsDiff(e.feat, serial[i]!.feat)).toBeLessThan(1e-5);
      expect(maxAbsDiff(e.tokens!, serial[i]!.tokens!)).toBeLessThan(1e-5);
    });
  });

  it('features are L2-normalized', async () => {
    const [f] = await rt.embedTexts(['a red circle']);
    expect(Math.hypot(...f!)).toBeCloseTo(1, 5);
  });

  it('ITM over many candidates in one call equals ITM one candidate at a time', async () => {
    const s = rt.manifest.preprocess.size;
    const tokens = await Promise.all(Array.from({ length: 6 }, (_, i) => rt.embedPixels(fakePixels(i, s)).then((e) => e.tokens!)));
    const all = await rt.itmScores('a red circle', tokens);
    for (const [i, t] of tokens.entries()) {
      const [one] = await rt.itmScores('a red circle', [t]);
      expect(Math.abs(one!.logit - all[i]!.logit)).toBeLessThan(1e-5);
      expect(all[i]!.prob).toBeGreaterThan(0);
      expect(all[i]!.prob).toBeLessThan(1);
    }
  });
});

describe('captions', () => {
  it('greedy captions are deterministic', async () => {
    const s = rt.manifest.preprocess.size;
    const { tokens } = await rt.embedPixels(fakePixels(3, s));
    const a = await rt.caption({ tokens: tokens! }, { method: 'greedy' });
    const b = await rt.caption({ tokens: tokens! }, { method: 'greedy' });
    expect(a.ids.length).toBeGreaterThanOrEqual(rt.manifest.caption!.minLength);
    expect(a).toEqual(b);
  });

  it('beam search scores at least as well as greedy', async () => {
    const s = rt.manifest.preprocess.size;
    const { tokens } = await rt.embedPixels(fakePixels(4, s));
    const g = await rt.caption({ tokens: tokens! }, { method: 'greedy', maxLength: 6, minLength: 0 });
    const b = await rt.caption({ tokens: tokens! }, { method: 'beam', numBeams: 4, maxLength: 6, minLength: 0 });
    const perToken = (c: { logProb: number; ids: number[] }) => c.logProb / (c.ids.length + 1);
    expect(perToken(b)).toBeGreaterThanOrEqual(perToken(g) - 1e-6);
  });

  it('beam-itm picks one of the beam hypotheses, from stored tokens too when the decoder reads the ITM tokens', async () => {
    const s = rt.manifest.preprocess.size;
    const { tokens } = await rt.embedPixels(fakePixels(6, s));
    expect(rt.decoderReadsItmTokens).toBe(true);
    const c = await rt.caption({ tokens: tokens! }, { method: 'beam-itm', numBeams: 3, maxLength: 6 });
    const hyps = (await rt.generate(tokens!, rt.tokenizer.encodePrompt(rt.manifest.caption!.prompt), { method: 'beam', numBeams: 3, maxLength: 6 })).hypotheses!;
    expect(hyps.map((h) => h.ids)).toContainEqual(c.ids);
  });

  it('a bundle with its own caption encoder cannot score stored ITM tokens with its decoder', async () => {
    const copy = await bundleCopy((m) => {
      m.graphs.captionVision = { file: m.graphs.vision.file, inputs: { pixelValues: m.graphs.vision.inputs.pixelValues }, outputs: { imageEmbeds: m.graphs.vision.outputs.imageEmbeds } };
    });
    const other = await Runtime.open(copy.dir, { threads: 1, intraOpThreads: 1 });
    try {
      expect(other.decoderReadsItmTokens).toBe(false);
      const { tokens } = await other.embedPixels(fakePixels(6, other.manifest.preprocess.size));
      await expect(other.caption({ tokens: tokens! }, { method: 'beam-itm' })).rejects.toThrow(/beam-itm needs the image/);
    } finally {
      await other.close();
      await copy.cleanup();
    }
  });

  it('a default caption method (MIRA_CAPTION_METHOD) applies when a call names none', async () => {
    const s = rt.manifest.preprocess.size;
    // Input 1 is one where this bundle's default (beam, 3 beams) and greedy decoding disagree.
    const { tokens } = await rt.embedPixels(fakePixels(1, s));
    const opts = { maxLength: 6, minLength: 0 };
    const greedyByDefault = await Runtime.open(TINY_BLIP, { threads: 1, intraOpThreads: 1, captionMethod: 'greedy' });
    try {
      const bundleDefault = await rt.caption({ tokens: tokens! }, opts);
      const greedy = await rt.caption({ tokens: tokens! }, { ...opts, method: 'greedy' });
      expect(greedy.ids).not.toEqual(bundleDefault.ids);
      expect(await greedyByDefault.caption({ tokens: tokens! }, opts)).toEqual(greedy);
      expect(await greedyByDefault.caption({ tokens: tokens! }, { ...opts, method: 'beam' })).toEqual(bundleDefault);
    } finally {
      await greedyByDefault.close();
    }
  });

  it('nucleus sampling with a seed is reproducible', async () => {
    const s = rt.manifest.preprocess.size;
    const { tokens } = await rt.embedPixels(fakePixels(5, s));
    const a = await rt.caption({ tokens: tokens! }, { method: 'nucleus', seed: 7, topP: 0.9 });
    const b = await rt.caption({ tokens: tokens! }, { method: 'nucleus', seed: 7, topP: 0.9 });
    expect(a.ids).toEqual(b.ids);
  });
});

describe('worker threads', () => {
  it('replaces a thread that dies and keeps answering', async () => {
    const before = rt.threads.length;
    await rt.threads[0]!.terminate();
    const [f] = await rt.embedTexts(['a red circle']);
    expect(f!.length).toBe(rt.manifest.embedDim);
    await new Promise((r) => setTimeout(r, 50));
    expect(rt.threads.length).toBe(before);
  });
});

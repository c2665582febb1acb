/**
 * Mira's loader, exporter and runtime against Salesforce BLIP's own outputs (../shared/reference/
 * blip-parity): the weights are exported to a bundle by models/mira_blip and run by the TypeScript
 * runtime. ITC and ITM within 1e-4, identical greedy ids.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../../src/inference/runtime.ts';
import { dot } from '../../src/inference/runtime.ts';
import { hasParity, hasTorch, noParityReason, noTorchReason, PARITY_DIR, python, REPO } from '../support/env.ts';
import { maxAbsDiff } from './helpers.ts';

const skip = !hasParity || !hasTorch;
if (skip) console.warn(`blip-parity tests skipped: ${!hasParity ? noParityReason : noTorchReason}`);

interface Inputs { pixel_values: number[][][][]; input_ids: number[][]; attention_mask: number[][]; decoder_prefix: number[] }
interface Expected {
  image_embeds: number[][][]; image_feat: number[][]; text_feat: number[][]; itc_sim: number[][];
  itm_logits_enc_first: number[][][]; itm_logits_cls_first: number[][][]; greedy_ids: number[][];
}

let rt: Runtime;
let dir: string;
let inputs: Inputs;
let expected: Expected;
const pixels = (i: number) => Float32Array.from(inputs.pixel_values[i]!.flat(2));
const unpadded = (t: number) => inputs.input_ids[t]!.filter((_, j) => inputs.attention_mask[t]![j] === 1);

describe.skipIf(skip)('BLIP parity through the exporter and the runtime', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mira-parity-'));
    const out = spawnSync('bash', [join(REPO, 'models/mira_blip/make_parity_bundle.sh'), dir, PARITY_DIR, '--no-check'], {
      env: { ...process.env, MIRA_PYTHON: python },
      encoding: 'utf8',
    });
    expect(out.status, `export failed:\n${out.stderr}`).toBe(0);
    inputs = JSON.parse(await readFile(join(PARITY_DIR, 'inputs.json'), 'utf8'));
    expected = JSON.parse(await readFile(join(PARITY_DIR, 'expected.json'), 'utf8'));
    rt = await Runtime.open(dir, { threads: 1 });
  }, 180_000);
  afterAll(async () => {
    await rt?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('image features and token sequences match within 1e-4', async () => {
    for (let i = 0; i < 3; i++) {
      const e = await rt.embedPixels(pixels(i));
      expect(maxAbsDiff(e.feat, expected.image_feat[i]!), `image ${i} feat`).toBeLessThan(1e-4);
      expect(maxAbsDiff(e.tokens!, expected.image_embeds[i]!.flat()), `image ${i} tokens`).toBeLessThan(1e-4);
    }
  });

  it('text features and ITC similarities match within 1e-4', async () => {
    const texts = await Promise.all([0, 1, 2].map((t) => rt.embedTokenIds(unpadded(t))));
    texts.forEach((f, t) => expect(maxAbsDiff(f, expected.text_feat[t]!), `text ${t}`).toBeLessThan(1e-4));
    for (let i = 0; i < 3; i++) {
      const img = await rt.embedPixels(pixels(i));
      for (let t = 0; t < 3; t++) expect(Math.abs(dot(img.feat, texts[t]!) - expected.itc_sim[i]![t]!)).toBeLessThan(1e-4);
    }
  });

  it('ITM logits with [ENC] first match within 1e-4', async () => {
    const tokens = await Promise.all([0, 1, 2].map(async (i) => (await rt.embedPixels(pixels(i))).tokens!));
    for (let t = 0; t < 3; t++) {
      const ids = rt.tokenizer.itmFirstToken(unpadded(t));
      expect(ids[0]).toBe(30523);
      const scores = await rt.itmScoresForIds(ids, tokens);
      scores.forEach((s, i) => {
        const [l0, l1] = expected.itm_logits_enc_first[t]![i]!;
        expect(Math.abs(s.logit - l1!), `text ${t} image ${i}`).toBeLessThan(1e-4);
        expect(Math.abs(s.prob - 1 / (1 + Math.exp(l0! - l1!)))).toBeLessThan(1e-4);
      });
    }
  });

  it('ITM logits with [CLS] kept match the blip_itm.py variant', async () => {
    const tokens = (await rt.embedPixels(pixels(0))).tokens!;
    const [score] = await rt.itmScoresForIds(unpadded(1), [tokens]);
    expect(Math.abs(score!.logit - expected.itm_logits_cls_first[1]![0]![1]!)).toBeLessThan(1e-4);
  });

  it('decoder logits for the prompt match within 1e-4', async () => {
    const npy = await readFile(join(PARITY_DIR, 'decoder_logits.npy'));
    const headerLen = npy.readUInt16LE(8);
    const all = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLen, npy.byteOffset + npy.length));
    const vocab = all.length / (3 * 4);
    for (let i = 0; i < 3; i++) {
      const tokens = await rt.captionTokens(pixels(i));
      const [last] = await rt.decoderStep([inputs.decoder_prefix], tokens);
      const want = all.subarray((i * 4 + 3) * vocab, (i * 4 + 4) * vocab);
      expect(maxAbsDiff(last!, want), `image ${i}`).toBeLessThan(1e-4);
    }
  });

  it('greedy ids are identical', async () => {
    for (let i = 0; i < 3; i++) {
      const tokens = await rt.captionTokens(pixels(i));
      const r = await rt.generate(tokens, inputs.decoder_prefix, { method: 'greedy', maxLength: 12, minLength: 0 });
      expect([...inputs.decoder_prefix, ...r.ids], `image ${i}`).toEqual(expected.greedy_ids[i]);
    }
  });
});

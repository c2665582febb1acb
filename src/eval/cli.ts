/**
 * Evaluation through Mira's TypeScript runtime on a generated scenes folder.
 *   npm run eval -- --bundle DIR --data DIR [--k 16] [--limit N] [--caption-method greedy|beam] [--json FILE]
 * A retrieved item counts as correct when its scene equals the query's (several images share one).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dot, Runtime } from '../inference/runtime.ts';
import { parseCaption, sceneKey } from '../scenes/index.ts';
import { blipScore } from '../search/score.ts';
import { corpusBleu4, rankByScore, recallAtK, rerankTopK } from './metrics.ts';

interface Record_ { file: string; captions: string[]; key: string }

function fail(msg: string): never {
  console.error(`eval: ${msg}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    bundle: { type: 'string' }, data: { type: 'string' }, k: { type: 'string', default: '16' },
    limit: { type: 'string' }, json: { type: 'string' }, 'caption-method': { type: 'string', default: 'greedy' },
  },
  strict: true,
});
if (!values.bundle) fail('missing --bundle DIR');
if (!values.data) fail('missing --data DIR');
const k = Number(values.k);
if (!Number.isInteger(k) || k < 1) fail(`--k must be a positive integer, got "${values.k}"`);
const method = values['caption-method'];
if (method !== 'greedy' && method !== 'beam') fail('--caption-method must be greedy or beam');

const lines = await readFile(join(values.data, 'captions.jsonl'), 'utf8').catch(() => fail(`${values.data}/captions.jsonl: cannot read it`));
let records: Record_[] = lines.trim().split('\n').map((l) => JSON.parse(l));
if (values.limit) records = records.slice(0, Number(values.limit));
const n = records.length;

const rt = await Runtime.open(values.bundle);
const t0 = performance.now();
const images = await Promise.all(records.map((r) => readFile(join(values.data!, r.file))));
const embs = await rt.embedImages(images);
const queries = records.map((r) => r.captions[0]!);
const allTexts = records.flatMap((r, i) => r.captions.map((c) => ({ text: c, image: i })));
const textFeats = await rt.embedTexts(allTexts.map((t) => t.text));
const queryFeats = records.map((_, i) => textFeats[allTexts.findIndex((t) => t.image === i)]!);
const hasItm = !!rt.manifest.graphs.itm;

// text -> image
const t2iItc = queryFeats.map((q) => rankByScore(embs.map((e) => dot(e.feat, q))));
const t2iRerank = hasItm
  ? await Promise.all(t2iItc.map(async (ranking, q) => {
      const top = ranking.slice(0, k);
      const itm = await rt.itmScores(queries[q]!, top.map((g) => embs[g]!.tokens!));
      return rerankTopK(ranking, k, top.map((g, j) => blipScore(itm[j]!, dot(embs[g]!.feat, queryFeats[q]!))));
    }))
  : t2iItc;
const t2iHit = (q: number, g: number) => records[g]!.key === records[q]!.key;

// image -> text
const i2tItc = embs.map((e) => rankByScore(textFeats.map((t) => dot(e.feat, t))));
const i2tRerank = hasItm
  ? await Promise.all(i2tItc.map(async (ranking, q) => {
      const top = ranking.slice(0, k);
      const itm = await rt.itmScoresForTexts(top.map((t) => allTexts[t]!.text), embs[q]!.tokens!);
      return rerankTopK(ranking, k, top.map((t, j) => blipScore(itm[j]!, dot(embs[q]!.feat, textFeats[t]!))));
    }))
  : i2tItc;
const i2tHit = (q: number, t: number) => records[allTexts[t]!.image]!.key === records[q]!.key;

// captions
let caption: { bleu4: number; sceneAccuracy: number; method: string } | undefined;
if (rt.manifest.graphs.decoder) {
  const generated = await Promise.all(embs.map((e, i) => rt.caption(images[i]!, { method })));
  const correct = generated.filter((g, i) => {
    const s = parseCaption(g.text);
    return s !== null && sceneKey(s) === records[i]!.key;
  }).length;
  caption = { bleu4: corpusBleu4(generated.map((g) => g.text), records.map((r) => r.captions)), sceneAccuracy: correct / n, method };
}
await rt.close();

const ks = [1, 5, 10];
const figures = {
  model: rt.id, data: values.data, n, k,
  t2i: { itc: recallAtK(t2iItc, t2iHit, ks), rerank: recallAtK(t2iRerank, t2iHit, ks) },
  i2t: { itc: recallAtK(i2tItc, i2tHit, ks), rerank: recallAtK(i2tRerank, i2tHit, ks) },
  ...(caption ? { caption } : {}),
  seconds: (performance.now() - t0) / 1000,
};
const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
console.log(`eval ${figures.model} on ${n} images (${values.data}), re-rank top ${k} with ITM + ITC`);
for (const dir of ['t2i', 'i2t'] as const) {
  for (const how of ['itc', 'rerank'] as const) {
    const r = figures[dir][how];
    console.log(`  ${dir} ${how.padEnd(6)}  R@1 ${pct(r.r1!)}  R@5 ${pct(r.r5!)}  R@10 ${pct(r.r10!)}`);
  }
}
if (caption) console.log(`  captions (${method})  BLEU-4 ${caption.bleu4.toFixed(3)}  scene accuracy ${pct(caption.sceneAccuracy)}%`);
if (values.json) await writeFile(values.json, JSON.stringify(figures, null, 2) + '\n');

/**
 * Evaluation through Mira's TypeScript runtime on a generated scenes folder.
 *   npm run eval -- --bundle DIR --data DIR [--k 16] [--limit N] [--caption-method greedy|beam] [--beams 3] [--json FILE]
 * A retrieved item counts as correct when its scene equals the query's (several images share one).
 * Captions are greedy by default; `--caption-method beam` searches `--beams` beams (3, as BLIP's paper does).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { intFlag, oneOf, parse, UsageError } from '../cli/command.ts';
import { dot, Runtime } from '../inference/runtime.ts';
import { parseCaption, sceneKey } from '../scenes/index.ts';
import { blipScore } from '../search/score.ts';
import { corpusBleu4, rankByScore, recallAtK, rerankTopK } from './metrics.ts';

interface Record_ { file: string; captions: string[]; key: string }

const USAGE = 'usage: npm run eval -- --bundle DIR --data DIR [--k 16] [--limit N] [--caption-method greedy|beam] [--beams 3] [--json FILE]';

/** Bad usage or input: one line on stderr, exit code 2. */
function fail(msg: string): never {
  console.error(`eval: ${msg}`);
  process.exit(2);
}

function options() {
  const { values } = parse(process.argv.slice(2), {
    bundle: { type: 'string' }, data: { type: 'string' }, k: { type: 'string' }, limit: { type: 'string' },
    json: { type: 'string' }, 'caption-method': { type: 'string', default: 'greedy' }, beams: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.bundle) throw new UsageError('missing --bundle DIR');
  if (!values.data) throw new UsageError('missing --data DIR');
  return {
    bundle: values.bundle, data: values.data, json: values.json,
    k: intFlag(values.k, 'k', 16),
    limit: values.limit === undefined ? undefined : intFlag(values.limit, 'limit', 1),
    method: oneOf('--caption-method', values['caption-method']!, ['greedy', 'beam'] as const),
    beams: intFlag(values.beams, 'beams', 3),
  };
}

let opts: ReturnType<typeof options>;
try {
  opts = options();
} catch (err) {
  if (err instanceof UsageError) fail(`${err.message} (${USAGE})`);
  throw err;
}
const { k, method, beams } = opts;
const captionOptions = method === 'beam' ? { method, numBeams: beams } : { method };
const methodName = method === 'beam' ? `beam-${beams}` : method;

const lines = await readFile(join(opts.data, 'captions.jsonl'), 'utf8').catch(() => fail(`${opts.data}/captions.jsonl: cannot read it`));
let records: Record_[] = lines.trim().split('\n').map((l, i) => {
  try {
    return JSON.parse(l) as Record_;
  } catch {
    return fail(`${opts.data}/captions.jsonl line ${i + 1}: not JSON`);
  }
});
if (opts.limit) records = records.slice(0, opts.limit);
const n = records.length;

const rt = await Runtime.open(opts.bundle).catch((err: Error) => fail(err.message.split('\n')[0]!));
const t0 = performance.now();
const images = await Promise.all(records.map((r) => readFile(join(opts.data, r.file)).catch(() => fail(`${join(opts.data, r.file)}: cannot read it`))));
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
  const generated = await Promise.all(embs.map((e, i) => rt.caption(images[i]!, captionOptions)));
  const correct = generated.filter((g, i) => {
    const s = parseCaption(g.text);
    return s !== null && sceneKey(s) === records[i]!.key;
  }).length;
  caption = { bleu4: corpusBleu4(generated.map((g) => g.text), records.map((r) => r.captions)), sceneAccuracy: correct / n, method: methodName };
}
await rt.close();

const ks = [1, 5, 10];
const figures = {
  model: rt.id, data: opts.data, n, k,
  t2i: { itc: recallAtK(t2iItc, t2iHit, ks), rerank: recallAtK(t2iRerank, t2iHit, ks) },
  i2t: { itc: recallAtK(i2tItc, i2tHit, ks), rerank: recallAtK(i2tRerank, i2tHit, ks) },
  ...(caption ? { caption } : {}),
  seconds: (performance.now() - t0) / 1000,
};
const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
console.log(`eval ${figures.model} on ${n} images (${opts.data}), re-rank top ${k} with ITM + ITC`);
for (const dir of ['t2i', 'i2t'] as const) {
  for (const how of ['itc', 'rerank'] as const) {
    const r = figures[dir][how];
    console.log(`  ${dir} ${how.padEnd(6)}  R@1 ${pct(r.r1!)}  R@5 ${pct(r.r5!)}  R@10 ${pct(r.r10!)}`);
  }
}
if (caption) console.log(`  captions (${methodName})  BLEU-4 ${caption.bleu4.toFixed(3)}  scene accuracy ${pct(caption.sceneAccuracy)}%`);
if (opts.json) await writeFile(opts.json, JSON.stringify(figures, null, 2) + '\n');

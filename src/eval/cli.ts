/**
 * Evaluation through Mira's TypeScript runtime on a generated scenes folder.
 *   npm run eval -- --bundle DIR --data DIR [--k 16] [--rerank itm|itm+lm] [--limit N]
 *                   [--caption-method greedy|beam|beam-itm] [--beams N] [--json FILE]
 * A retrieved item counts as correct when its scene equals the query's (several images share one).
 * Re-ranking scores the ITC top k with `rerankScore` (src/search/score.ts): `itm+lm` by default where the
 * bundle's decoder reads the ITM tokens, else BLIP's `itm`; with `itm+lm` BLIP's rule is reported beside
 * it as `rerankItm`. Captions are greedy by default; `beam` searches `--beams` beams (default 3, as
 * BLIP's paper does); `beam-itm` keeps the best of `--beams` (default 5) hypotheses by ITM.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { intFlag, oneOf, parse, UsageError } from '../cli/command.ts';
import { dot, ITM_CAPTION_BEAMS, Runtime } from '../inference/runtime.ts';
import { parseCaption, sceneKey } from '../scenes/index.ts';
import { RERANK_RULES, rerankScore, type RerankRule } from '../search/score.ts';
import { corpusBleu4, rankByScore, recallAtK, rerankTopK } from './metrics.ts';

interface Record_ { file: string; captions: string[]; key: string }

const USAGE =
  'usage: npm run eval -- --bundle DIR --data DIR [--k 16] [--rerank itm|itm+lm] [--limit N] [--caption-method greedy|beam|beam-itm] [--beams N] [--json FILE]';

/** Bad usage or input: one line on stderr, exit code 2. */
function fail(msg: string): never {
  console.error(`eval: ${msg}`);
  process.exit(2);
}

function options() {
  const { values } = parse(process.argv.slice(2), {
    bundle: { type: 'string' }, data: { type: 'string' }, k: { type: 'string' }, limit: { type: 'string' },
    json: { type: 'string' }, rerank: { type: 'string' }, 'caption-method': { type: 'string', default: 'greedy' }, beams: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.bundle) throw new UsageError('missing --bundle DIR');
  if (!values.data) throw new UsageError('missing --data DIR');
  const method = oneOf('--caption-method', values['caption-method']!, ['greedy', 'beam', 'beam-itm'] as const);
  return {
    bundle: values.bundle, data: values.data, json: values.json,
    k: intFlag(values.k, 'k', 16),
    limit: values.limit === undefined ? undefined : intFlag(values.limit, 'limit', 1),
    rule: values.rerank === undefined ? undefined : oneOf('--rerank', values.rerank, RERANK_RULES),
    method,
    beams: method === 'greedy' ? 1 : intFlag(values.beams, 'beams', method === 'beam' ? 3 : ITM_CAPTION_BEAMS),
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
const captionOptions = method === 'greedy' ? { method } : { method, numBeams: beams };
const methodName = method === 'greedy' ? method : `${method}-${beams}`;

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
const rule: RerankRule = opts.rule ?? (rt.decoderReadsItmTokens ? 'itm+lm' : 'itm');
if (rule === 'itm+lm' && !rt.decoderReadsItmTokens) fail(`--rerank itm+lm: ${rt.id} has no decoder that reads its ITM tokens`);
const withLm = hasItm && rule === 'itm+lm';

/** Re-ranks one ranking's top k: by `rule`, and by BLIP's rule too when that is not `rule`. */
async function rerank(ranking: number[], pairs: (top: number[]) => { texts: string[]; tokens: Float32Array[]; cosines: number[] }) {
  const top = ranking.slice(0, k);
  const { texts, tokens, cosines } = pairs(top);
  const [itm, lm] = await Promise.all([rt.itmScoresForPairs(texts, tokens), withLm ? rt.captionLogLikelihoods(texts, tokens) : undefined]);
  const byItm = rerankTopK(ranking, k, top.map((_, j) => rerankScore(itm[j]!, cosines[j]!)));
  return { ranking: lm ? rerankTopK(ranking, k, top.map((_, j) => rerankScore(itm[j]!, cosines[j]!, lm[j]))) : byItm, byItm };
}

// text -> image
const t2iItc = queryFeats.map((q) => rankByScore(embs.map((e) => dot(e.feat, q))));
const t2iRerank = hasItm
  ? await Promise.all(t2iItc.map((ranking, q) =>
      rerank(ranking, (top) => ({ texts: top.map(() => queries[q]!), tokens: top.map((g) => embs[g]!.tokens!), cosines: top.map((g) => dot(embs[g]!.feat, queryFeats[q]!)) }))))
  : undefined;
const t2iHit = (q: number, g: number) => records[g]!.key === records[q]!.key;

// image -> text
const i2tItc = embs.map((e) => rankByScore(textFeats.map((t) => dot(e.feat, t))));
const i2tRerank = hasItm
  ? await Promise.all(i2tItc.map((ranking, q) =>
      rerank(ranking, (top) => ({ texts: top.map((t) => allTexts[t]!.text), tokens: top.map(() => embs[q]!.tokens!), cosines: top.map((t) => dot(embs[q]!.feat, textFeats[t]!)) }))))
  : undefined;
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
type Reranked = { ranking: number[]; byItm: number[] }[] | undefined;
const recalls = (itc: number[][], reranked: Reranked, hit: (q: number, g: number) => boolean) => ({
  itc: recallAtK(itc, hit, ks),
  rerank: recallAtK(reranked?.map((r) => r.ranking) ?? itc, hit, ks),
  ...(withLm ? { rerankItm: recallAtK(reranked!.map((r) => r.byItm), hit, ks) } : {}),
});
const figures = {
  model: rt.id, data: opts.data, n, k, rerankRule: hasItm ? rule : 'none',
  t2i: recalls(t2iItc, t2iRerank, t2iHit),
  i2t: recalls(i2tItc, i2tRerank, i2tHit),
  ...(caption ? { caption } : {}),
  seconds: (performance.now() - t0) / 1000,
};
const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
const ruleName = { itm: 'ITM + ITC', 'itm+lm': `ITM + ITC + LM` }[rule];
console.log(`eval ${figures.model} on ${n} images (${opts.data}), re-rank top ${k} with ${hasItm ? ruleName : 'nothing (no ITM graph)'}`);
for (const dir of ['t2i', 'i2t'] as const) {
  const rows: [string, Record<string, number> | undefined][] = [['itc', figures[dir].itc], ['rerank', figures[dir].rerank], ['  (itm)', (figures[dir] as { rerankItm?: Record<string, number> }).rerankItm]];
  for (const [how, r] of rows) {
    if (r) console.log(`  ${dir} ${how.padEnd(7)}  R@1 ${pct(r.r1!)}  R@5 ${pct(r.r5!)}  R@10 ${pct(r.r10!)}`);
  }
}
if (caption) console.log(`  captions (${methodName})  BLEU-4 ${caption.bleu4.toFixed(3)}  scene accuracy ${pct(caption.sceneAccuracy)}%`);
if (opts.json) await writeFile(opts.json, JSON.stringify(figures, null, 2) + '\n');

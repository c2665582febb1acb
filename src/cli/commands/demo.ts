import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnv, ROOT, runtimeOptions } from '../../config.ts';
import { dot, Runtime } from '../../inference/runtime.ts';
import { parseCaption, renderScene, sampleScenes, sceneKey, SPLIT_SEEDS } from '../../scenes/index.ts';
import { blipScore } from '../../search/score.ts';
import { intFlag, parse, type Command } from '../command.ts';
import { progressBar } from '../progress.ts';

const QUERIES = [
  'a small red circle to the left of a large blue square',
  'a large green triangle above a small yellow star',
  'a blue square with a red circle on its left',
  'a small purple hexagon',
];

export const demo: Command = {
  summary: 'embed generated scenes in memory, search them by text with ITM re-ranking, caption a few',
  help: `usage: mira demo [--n 500] [--k 5] [--bundle DIR]

Generates --n captioned scenes, embeds them with the model, runs a few text queries (ITC top 16,
re-ranked with ITM) and captions three images. The service-backed demo replaces this once the API exists.`,
  async run(argv) {
    const { values } = parse(argv, { n: { type: 'string' }, k: { type: 'string' }, bundle: { type: 'string' } });
    const n = intFlag(values.n, 'n', 500);
    const k = intFlag(values.k, 'k', 5);
    const env = loadEnv();
    let bundle = values.bundle ?? env.MIRA_MODEL_DIR;
    if (!values.bundle && !existsSync(join(bundle, 'manifest.json'))) {
      bundle = join(ROOT, 'test/fixtures/tiny-blip');
      console.error(`no default model at ${env.MIRA_MODEL_DIR}: using the random-weight test bundle (results are meaningless)`);
    }
    const rt = await Runtime.open(bundle, runtimeOptions(env));
    try {
      console.log(`model ${rt.id} (${rt.manifest.family}), ${rt.poolSize.threads} inference threads on ${rt.provider}`);
      const records = sampleScenes(SPLIT_SEEDS.demo, n);
      const bar = progressBar('embedding', n);
      const feats: Float32Array[] = [];
      const tokens: (Float32Array | undefined)[] = [];
      const images: Buffer[] = [];
      const size = Math.max(64, rt.manifest.preprocess.size);
      for (let start = 0; start < n; start += 64) {
        const chunk = records.slice(start, start + 64);
        const bytes = await Promise.all(chunk.map((r) => renderScene(r.scene, { size, layout: r.layout })));
        const embs = await rt.embedImages(bytes);
        images.push(...bytes);
        embs.forEach((e) => (feats.push(e.feat), tokens.push(e.tokens)));
        bar.update(feats.length);
      }
      bar.done();

      for (const q of QUERIES) {
        const want = parseCaption(q);
        const wantKey = want ? sceneKey(want) : undefined;
        const [qf] = await rt.embedTexts([q]);
        const ranked = feats.map((f, i) => ({ i, itc: dot(f, qf!) })).sort((a, b) => b.itc - a.itc).slice(0, 16);
        let rows = ranked.map((r) => ({ ...r, itm: undefined as number | undefined, score: r.itc }));
        if (rt.manifest.graphs.itm && tokens[0]) {
          const itm = await rt.itmScores(q, ranked.map((r) => tokens[r.i]!));
          rows = ranked.map((r, j) => ({ ...r, itm: itm[j]!.prob, score: blipScore(itm[j]!, r.itc) })).sort((a, b) => b.score - a.score);
        }
        console.log(`\n"${q}"`);
        for (const r of rows.slice(0, k)) {
          const rec = records[r.i]!;
          const hit = rec.key === wantKey ? '✓' : ' ';
          const itm = r.itm === undefined ? '' : ` itm ${r.itm.toFixed(2)}`;
          console.log(`  ${hit} ${rec.file}  itc ${r.itc.toFixed(3)}${itm}  ${rec.captions[0]}`);
        }
      }
      if (rt.manifest.graphs.decoder) {
        console.log('\ncaptions (beam search):');
        for (const i of [0, 1, 2]) {
          const c = await rt.caption(images[i]!);
          console.log(`  ${records[i]!.file}  "${c.text}"   truth: "${records[i]!.captions[0]}"`);
        }
      }
    } finally {
      await rt.close();
    }
  },
};

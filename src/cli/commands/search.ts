import { apiFlags, apiHelp, openBackend, rankingLabel, type SearchOutput } from '../backend.ts';
import { RERANK_RULES } from '../../search/score.ts';
import { intFlag, oneOf, parse, UsageError, type Command } from '../command.ts';

export const search: Command = {
  summary: 'search a collection by text',
  help: `usage: mira search "TEXT" --collection NAME [--k 10] [--no-rerank] [--candidates 16] [--rerank-rule itm|itm+lm] [--filter JSON] [--captions] [--api URL] [--json]

${apiHelp}

examples:
  mira search "a small red circle left of a blue square" --collection demo
  mira search "a dog on a beach" --collection holidays --k 20 --filter '{"album":"2024"}' --json
  mira search "a red circle above a blue square" --collection demo --rerank-rule itm   (BLIP's rule: ITM + ITC)
  MIRA_API_URL=http://127.0.0.1:8080 MIRA_API_KEY=mira_... mira search "a dog" --collection holidays`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      collection: { type: 'string' },
      k: { type: 'string' },
      'no-rerank': { type: 'boolean', default: false },
      candidates: { type: 'string' },
      'rerank-rule': { type: 'string' },
      filter: { type: 'string' },
      captions: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      ...apiFlags,
    });
    const text = positionals[0];
    if (!text) throw new UsageError('missing TEXT');
    if (!values.collection) throw new UsageError('missing --collection NAME');
    const filter = values.filter === undefined ? undefined : parseFilter(values.filter);
    const k = intFlag(values.k, 'k', 10);
    const rule = values['rerank-rule'] === undefined ? undefined : oneOf('--rerank-rule', values['rerank-rule'], RERANK_RULES);
    const rerank = { enabled: !values['no-rerank'], candidates: intFlag(values.candidates, 'candidates', 16), ...(rule ? { rule } : {}) };
    const backend = await openBackend(values);
    try {
      const collection = await backend.collection(values.collection, { create: false });
      if (!collection) throw new UsageError(`--collection: no collection named ${values.collection}`);
      const out = await backend.search(collection, { text, k, rerank, captions: values.captions, ...(filter ? { filter } : {}) });
      printResults(collection.name, out, values.json);
    } finally {
      await backend.close();
    }
  },
};

function parseFilter(raw: string): Record<string, unknown> {
  let filter: unknown;
  try {
    filter = JSON.parse(raw);
  } catch {
    throw new UsageError('--filter must be a JSON object, e.g. \'{"album":"2024"}\'');
  }
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw new UsageError('--filter must be a JSON object');
  return filter as Record<string, unknown>;
}

function printResults(collection: string, out: SearchOutput, json: boolean): void {
  if (json) return console.log(JSON.stringify({ collection, reranked: out.reranked, rerankRule: out.rerankRule, model: out.model, results: out.results }));
  console.log(`${out.results.length} results (${rankingLabel(out)}, model ${out.model})`);
  for (const r of out.results) {
    const itm = r.itmScore === undefined ? '' : ` itm ${r.itmScore.toFixed(3)}`;
    const lm = r.lmScore === undefined ? '' : ` lm ${r.lmScore.toFixed(2)}`;
    console.log(`  ${r.score.toFixed(3)}  itc ${r.itcScore.toFixed(3)}${itm}${lm}  ${r.source}${r.caption ? `  "${r.caption}"` : ''}`);
  }
}

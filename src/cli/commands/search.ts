import { apiFlags, apiHelp, openBackend, type SearchOutput } from '../backend.ts';
import { intFlag, parse, UsageError, type Command } from '../command.ts';

export const search: Command = {
  summary: 'search a collection by text',
  help: `usage: mira search "TEXT" --collection NAME [--k 10] [--no-rerank] [--candidates 16] [--filter JSON] [--captions] [--api URL] [--json]

${apiHelp}

examples:
  mira search "a small red circle left of a blue square" --collection demo
  mira search "a dog on a beach" --collection holidays --k 20 --filter '{"album":"2024"}' --json
  MIRA_API_URL=http://127.0.0.1:8080 MIRA_API_KEY=mira_... mira search "a dog" --collection holidays`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      collection: { type: 'string' },
      k: { type: 'string' },
      'no-rerank': { type: 'boolean', default: false },
      candidates: { type: 'string' },
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
    const rerank = { enabled: !values['no-rerank'], candidates: intFlag(values.candidates, 'candidates', 16) };
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
  if (json) return console.log(JSON.stringify({ collection, reranked: out.reranked, model: out.model, results: out.results }));
  console.log(`${out.results.length} results (${out.reranked ? 'ITC, re-ranked with ITM' : 'ITC'}, model ${out.model})`);
  for (const r of out.results) {
    const itm = r.itmScore === undefined ? '' : ` itm ${r.itmScore.toFixed(3)}`;
    console.log(`  ${r.score.toFixed(3)}  itc ${r.itcScore.toFixed(3)}${itm}  ${r.source}${r.caption ? `  "${r.caption}"` : ''}`);
  }
}

import { createContext } from '../../context.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { search as runSearch } from '../../search/search.ts';
import { intFlag, parse, UsageError, type Command } from '../command.ts';

export const search: Command = {
  summary: 'search a collection by text',
  help: `usage: mira search "TEXT" --collection NAME [--k 10] [--no-rerank] [--candidates 16] [--filter JSON] [--captions] [--json]

examples:
  mira search "a small red circle left of a blue square" --collection demo
  mira search "a dog on a beach" --collection holidays --k 20 --filter '{"album":"2024"}' --json`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      collection: { type: 'string' },
      k: { type: 'string' },
      'no-rerank': { type: 'boolean', default: false },
      candidates: { type: 'string' },
      filter: { type: 'string' },
      captions: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    const text = positionals[0];
    if (!text) throw new UsageError('missing TEXT');
    if (!values.collection) throw new UsageError('missing --collection NAME');
    let filter: Record<string, unknown> | undefined;
    if (values.filter) {
      try {
        filter = JSON.parse(values.filter);
      } catch {
        throw new UsageError('--filter must be a JSON object, e.g. \'{"album":"2024"}\'');
      }
      if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw new UsageError('--filter must be a JSON object');
    }
    const ctx = await createContext({ role: 'cli' });
    try {
      const collection = await getCollection(ctx.db, { name: values.collection });
      if (!collection) throw new UsageError(`--collection: no collection named ${values.collection}`);
      const result = await runSearch(ctx, {
        collection,
        query: { text },
        k: intFlag(values.k, 'k', 10),
        ...(filter ? { filter } : {}),
        rerank: { enabled: !values['no-rerank'], candidates: intFlag(values.candidates, 'candidates', 16) },
        captions: values.captions,
      });
      const rows = result.hits.map((h) => ({
        id: h.image.id,
        score: h.score,
        itcScore: h.itcScore,
        ...(h.itmScore !== undefined ? { itmScore: h.itmScore } : {}),
        source: h.image.source,
        caption: h.image.caption,
        metadata: h.image.metadata,
      }));
      if (values.json) console.log(JSON.stringify({ collection: collection.name, reranked: result.reranked, results: rows }));
      else {
        console.log(`${rows.length} results (${result.reranked ? 'ITC, re-ranked with ITM' : 'ITC'}, model ${result.model})`);
        for (const r of rows) {
          const itm = r.itmScore === undefined ? '' : ` itm ${r.itmScore.toFixed(3)}`;
          console.log(`  ${r.score.toFixed(3)}  itc ${r.itcScore.toFixed(3)}${itm}  ${r.source}${r.caption ? `  "${r.caption}"` : ''}`);
        }
      }
    } finally {
      await ctx.close();
    }
  },
};

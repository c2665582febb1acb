import { apiFlags, apiHelp } from '../backend.ts';
import { parse, UsageError, type Command } from '../command.ts';
import { follow, openVersionOps, type CollectionView } from '../versions.ts';
import { printJobs } from './models.ts';

const SUBCOMMANDS = ['reextract', 'rollback', 'delete-version'] as const;

export const collections: Command = {
  summary: "re-extract a collection with another model version, roll back, delete a version",
  help: `usage: mira collections reextract NAME --model ID [--no-wait] [--api URL] [--json]
       mira collections rollback NAME [--api URL] [--json]
       mira collections delete-version NAME --model ID [--api URL] [--json]

reextract embeds every image of NAME with model ID into a shadow version while searches keep
using the active one, then switches the collection; it follows the job (progress on stderr)
unless --no-wait. rollback makes the previous version active again. delete-version deletes a
version that is not the active one (its rows and index files).
${apiHelp}

examples:
  mira collections reextract holidays --model mira-blip-scenes@4
  mira collections rollback holidays
  mira collections delete-version holidays --model mira-blip-scenes@1`,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (!SUBCOMMANDS.includes(sub as (typeof SUBCOMMANDS)[number])) throw new UsageError(`unknown subcommand "${sub ?? ''}" (expected: ${SUBCOMMANDS.join(', ')})`);
    const { values, positionals } = parse(rest, { model: { type: 'string' }, 'no-wait': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, ...apiFlags });
    const name = positionals[0];
    if (!name) throw new UsageError('missing NAME (a collection)');
    if (sub !== 'rollback' && !values.model) throw new UsageError('missing --model ID (name@version)');
    const ops = await openVersionOps(values.api);
    try {
      if (sub === 'rollback') return printCollection(await ops.rollback(name), values.json);
      if (sub === 'delete-version') {
        const { collection, deleted } = await ops.deleteVersion(name, values.model!);
        return printCollection(collection, values.json, { deleted });
      }
      const job = await ops.reextract(name, values.model!);
      if (!values.json) console.log(`${name}: re-extracting with ${values.model} in job ${job.id}`);
      const [final] = !values['no-wait'] || ops.runsJobsHere ? await follow(ops, [job], values.json) : [job];
      printJobs([final!], values.json);
      return final!.state === 'failed' || final!.state === 'lost' ? 1 : 0;
    } finally {
      await ops.close();
    }
  },
};

function printCollection(c: CollectionView, json: boolean, extra: Record<string, unknown> = {}): number {
  if (json) console.log(JSON.stringify({ ...c, ...extra }));
  else {
    const more = Object.entries(extra).map(([k, v]) => `, ${k} ${String(v)}`).join('');
    console.log(`${c.name}: searched by ${c.embedder}, previous ${c.previousEmbedder ?? 'none'}, re-extracting ${c.pendingEmbedder ?? 'nothing'}${more}`);
  }
  return 0;
}

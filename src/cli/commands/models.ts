import { importClip } from '../../inference/import-clip.ts';
import { apiFlags, apiHelp } from '../backend.ts';
import { parse, UsageError, type Command } from '../command.ts';
import { follow, openVersionOps, type JobView } from '../versions.ts';

export const models: Command = {
  summary: 'list registered models; import published CLIP ONNX models as bundles; activate a model version',
  help: `usage: mira models list [--api URL] [--json]
       mira models import DIR [--out DIR] [--json]
       mira models activate ID [--no-wait] [--api URL] [--json]

list prints every registered model version (name@version, family, embedding size, graphs), the
active one marked with *.

activate makes ID (name@version) the active model and starts a re-extraction job for every
collection searched by another version of it; it follows the jobs (progress on stderr) until
they finish, unless --no-wait (with a server or a worker elsewhere: the jobs go on without the
command). Searches keep using the old version until each job switches its collection.
${apiHelp}

Recognizes the open_clip/Immich layout (visual/model.onnx, textual/model.onnx) and the
transformers.js layout (onnx/vision_model.onnx, onnx/text_model.onnx), checks the graphs and
writes manifest.json.

examples:
  mira models list
  mira models list --api http://127.0.0.1:8080 --json
  mira models import ./ViT-B-32__openai
  mira models import ./clip-vit-base-patch32 --out models/clip-b32
  mira models activate mira-blip-scenes@4`,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === 'activate') return activate(rest);
    if (sub === 'list') return list(rest);
    if (sub !== 'import') throw new UsageError(`unknown subcommand "${sub ?? ''}" (expected: list, import or activate)`);
    const { values, positionals } = parse(rest, { out: { type: 'string' }, json: { type: 'boolean', default: false } });
    const dir = positionals[0];
    if (!dir) throw new UsageError('missing DIR');
    const result = await importClip(dir, values.out ? { out: values.out } : {});
    const m = result.manifest;
    if (values.json) console.log(JSON.stringify({ name: m.name, version: m.version, embedDim: m.embedDim, written: result.written }));
    else console.log(`imported ${m.name}@${m.version} (clip, ${m.embedDim}-d) -> ${result.written}`);
  },
};

async function list(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean', default: false }, ...apiFlags });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const ops = await openVersionOps(values.api);
  try {
    const items = await ops.models();
    if (values.json) console.log(JSON.stringify({ items }));
    else if (items.length === 0) console.log('no models registered');
    else for (const m of items) console.log(`${m.active ? '*' : ' '} ${m.id}  ${m.family}  ${m.embedDim}-d  ${m.graphs.join(',')}`);
    return 0;
  } finally {
    await ops.close();
  }
}

async function activate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'no-wait': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, ...apiFlags });
  const id = positionals[0];
  if (!id) throw new UsageError('missing ID (name@version)');
  const ops = await openVersionOps(values.api);
  try {
    const { model, jobs } = await ops.activate(id);
    if (!values.json) console.log(`${model} is active; ${jobs.length ? jobs.map((j) => `${j.collection}: job ${j.id}`).join(', ') : 'no collection needs re-extraction'}`);
    const wait = !values['no-wait'] || ops.runsJobsHere;
    const final = wait ? await follow(ops, jobs, values.json) : jobs;
    printJobs(final, values.json, { model });
    return final.some((j) => j.state === 'failed' || j.state === 'lost') ? 1 : 0;
  } finally {
    await ops.close();
  }
}

/** One line per job, or one JSON object with `extra` beside the jobs. */
export function printJobs(jobs: JobView[], json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) return console.log(JSON.stringify({ ...extra, jobs }));
  for (const j of jobs) {
    const result = j.result === undefined ? '' : ` ${JSON.stringify(j.result)}`;
    console.log(`${j.collection}: job ${j.id} ${j.state}${j.error ? ` (${j.error})` : ''}${result}`);
  }
}

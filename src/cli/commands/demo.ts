import { dataDirOf, loadEnv } from '../../config.ts';
import { SPLIT_SEEDS } from '../../scenes/generate.ts';
import type { AppContext } from '../../context.ts';
import type { RunningServer } from '../../server.ts';
import { rankingLabel, type CollectionRef, type SearchOutput } from '../backend.ts';
import { EXIT_INTERRUPTED, interruptSignal, intFlag, parse, UsageError, type Command } from '../command.ts';
import { ensureDemoScenes, type DemoScenes } from '../demo-scenes.ts';
import { ingestExitCode, ingestPath, type IngestSummary } from './ingest.ts';
import { serveUntilStopped } from './serve.ts';

const QUERIES = ['a small red circle to the left of a large blue square', 'a large green triangle above a small yellow star', 'a purple hexagon'];
const MAX_N = 100_000;

export const demo: Command = {
  summary: 'the main job in one command: sample scenes into collection demo, then the API and web UI',
  help: `usage: mira demo [--n 3000] [--collection demo] [--no-serve] [--host H] [--port P] [--port-file FILE] [--wait 1800] [--json]

Generates --n captioned scenes (seed ${SPLIT_SEEDS.demo}, cached in MIRA_DATA_DIR/demo), ingests them with the
default model into the collection the way \`mira ingest\` does (deduplicated by content: a second run
adds nothing), runs one example search, then serves the API and the web UI (MIRA_HOST:MIRA_PORT,
default 127.0.0.1:8080) and prints the URL, example queries and the SDK snippet. Ctrl-C stops it.

Embedded (no DATABASE_URL): PGlite in MIRA_DATA_DIR, jobs in this process, and API keys off when
MIRA_AUTH is unset and it listens on loopback. With DATABASE_URL it says so and uses that Postgres
(service mode; with REDIS_URL, \`mira worker\` processes extract the features); keys stay on.
--no-serve stops after ingesting. --json prints one JSON object (the ingest summary with
"scenes", "collectionId" and, when serving, "url") instead of the text.

examples:
  mira demo
  mira demo --n 500 --port 9000
  mira demo --no-serve --n 60 --json`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        n: { type: 'string' },
        collection: { type: 'string', default: 'demo' },
        'no-serve': { type: 'boolean', default: false },
        host: { type: 'string' },
        port: { type: 'string' },
        'port-file': { type: 'string' },
        wait: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      false,
    );
    const n = intFlag(values.n, 'n', 3000);
    if (n > MAX_N) throw new UsageError(`--n must be at most ${MAX_N}, got ${n}`);
    const waitMs = intFlag(values.wait, 'wait', 1800) * 1000;
    const port = values.port === undefined ? undefined : values.port === '0' ? 0 : intFlag(values.port, 'port', 8080);
    const env = loadEnv();
    const { isLoopback } = await import('../../server.ts');
    const host = values.host ?? env.MIRA_HOST;
    const embedded = !env.DATABASE_URL;
    if (!embedded) console.error(`mira demo: service mode (DATABASE_URL is set)${env.REDIS_URL ? ': features are extracted by mira worker processes' : ', jobs in this process'}`);
    // The demo opens on loopback without keys unless told otherwise; anything else keeps them on.
    const authOff = env.MIRA_AUTH === 'off' || (!process.env.MIRA_AUTH && embedded && isLoopback(host));

    let generating = true;
    const stop = interruptSignal(() => {
      // Half-written scenes are harmless (regenerated next time); stored images are not cut off.
      if (generating) process.exit(EXIT_INTERRUPTED);
      console.error('mira demo: stopping (images stored so far are kept; run it again to go on)');
    });
    let scenes: DemoScenes;
    let summary: IngestSummary;
    let collection: CollectionRef;
    try {
      scenes = await ensureDemoScenes(dataDirOf(env), n, { progress: !values.json });
      generating = false;
      console.error(`${scenes.generated ? 'generated' : 'reusing'} ${n} scenes in ${scenes.dir}`);
      const { EmbeddedBackend } = await import('../backends/embedded.ts');
      const backend = await EmbeddedBackend.open();
      try {
        summary = await ingestPath(backend, values.collection, scenes.manifest, false, { concurrency: 8, waitMs, progress: !values.json, signal: stop.signal });
        collection = (await backend.collection(values.collection, { create: false }))!;
        if (stop.signal.aborted) return EXIT_INTERRUPTED;
        if (!values.json) console.log(describe(summary));
        if (!values.json && summary.ready > 0) {
          const rerank = { enabled: true, candidates: 16 };
          printSample(QUERIES[0]!, await backend.search(collection, { text: QUERIES[0]!, k: 3, rerank, captions: false }));
        }
      } finally {
        await backend.close();
      }
    } finally {
      stop.release();
    }
    const report = { ...summary, collectionId: collection.id, scenes: { dir: scenes.dir, n, generated: scenes.generated } };
    const code = ingestExitCode(summary, stop.signal);
    if (values['no-serve']) {
      if (values.json) console.log(JSON.stringify(report));
      return code;
    }
    await serveUntilStopped({
      host,
      ...(port !== undefined ? { port } : {}),
      ...(values['port-file'] ? { portFile: values['port-file'] } : {}),
      env: authOff ? { ...env, MIRA_AUTH: 'off' } : env,
      onListening(server) {
        if (values.json) console.log(JSON.stringify({ ...report, url: server.url }));
      },
      onReady(server, ctx) {
        if (!values.json) console.log(greeting(server, ctx, collection, authOff));
      },
    });
    return code;
  },
};

function describe(s: IngestSummary): string {
  const refused = s.refused.length > 0 ? `, ${s.refused.length} refused` : '';
  const failed = s.failed > 0 ? `, ${s.failed} failed` : '';
  const pending = s.pending > 0 ? `, ${s.pending} still being extracted` : '';
  if (s.added === 0 && s.duplicates > 0) return `nothing new: all ${s.duplicates} scenes were already in collection ${s.collection} (0 added)${failed}${pending}`;
  return `collection ${s.collection}: ${s.added} added, ${s.duplicates} already there, ${s.ready} extracted${refused}${failed}${pending}`;
}

function printSample(query: string, out: SearchOutput): void {
  console.log(`\nsearch "${query}" (${rankingLabel(out)}):`);
  for (const r of out.results) {
    const scene = (r.metadata as { scene?: string } | null)?.scene;
    console.log(`  ${r.score.toFixed(3)}  ${scene ?? r.source}${r.caption ? `   captioned "${r.caption}"` : ''}`);
  }
}

function greeting(server: RunningServer, ctx: AppContext, c: CollectionRef, authOff: boolean): string {
  const url = server.url;
  const auth = authOff ? '' : ` -H "authorization: Bearer $MIRA_API_KEY"`;
  const body = (text: string) => JSON.stringify({ collectionId: c.id, text, k: 5 });
  const cli = 'npm run mira --';
  return [
    '',
    `Mira is ready (${ctx.mode} mode, model ${ctx.defaultModel.id}):`,
    `  web UI    ${url}/`,
    `  API docs  ${url}/docs`,
    ...(authOff ? ['  API keys are off (loopback only; MIRA_AUTH=on turns them on)'] : [`  API keys are on: export MIRA_API_KEY=$(${cli} keys create --name me --scopes read)${ctx.mode === 'embedded' ? ' (with the demo stopped: one process holds the embedded store)' : ''}`]),
    '',
    'try:',
    `  curl -s ${url}/v1/search${auth} -H 'content-type: application/json' -d '${body(QUERIES[0]!)}'`,
    `  ${cli} search "${QUERIES[1]}" --collection ${c.name} --api ${url}`,
    `  ${cli} search "${QUERIES[2]}" --collection ${c.name} --filter '{"objects":1}' --api ${url} --json`,
    '',
    'from TypeScript (sdk/):',
    `  import { MiraClient } from './sdk/src/index.ts';`,
    `  const mira = new MiraClient({ baseUrl: '${url}'${authOff ? '' : ', apiKey: process.env.MIRA_API_KEY'} });`,
    `  const { results } = await MiraClient.data(mira.api.POST('/v1/search', { body: { collectionId: '${c.id}', text: '${QUERIES[0]}', k: 5 } }));`,
    '',
    'Ctrl-C stops it; `npm run demo` again brings it back without ingesting anything twice.',
  ].join('\n');
}

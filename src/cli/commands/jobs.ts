import { createWriteStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { MiraApiError, MiraClient, type Job, type JobListQuery } from '../../../sdk/src/index.ts';
import { toJob } from '../../api/routes/jobs/schema.ts';
import type { Env } from '../../config.ts';
import type { AppContext } from '../../context.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { getJob, listJobs } from '../../db/queries/jobs.ts';
import { jobStates, listedJobKinds } from '../../db/schema/jobs.ts';
import { exportDir, listOutputFiles, type OutputFile } from '../../extract/files.ts';
import { startExtraction, type ExtractRequest } from '../../extract/start.ts';
import { cancelJob, JobAlreadyFinished } from '../../jobs/records.ts';
import { apiFlags, apiHelp } from '../backend.ts';
import type { ApiBackend } from '../backends/api.ts';
import { EXIT_INTERRUPTED, intFlag, interruptSignal, oneOf, parse, UsageError, type Command } from '../command.ts';
import { progressBar } from '../progress.ts';

const FINISHED = new Set<Job['state']>(['completed', 'failed', 'cancelled', 'lost']);
/** `mira jobs list` filters that the database query and the API take as they are. */
type JobFilter = Pick<JobListQuery, 'state' | 'kind'>;
const POLL_MS = 500;

/** Job commands against the store opened here (jobs run in this process without Redis) or a server. */
export interface JobsBackend {
  /** Jobs run in this process (embedded, no Redis): a command must wait for them, or they wait for the next start. */
  readonly runsJobsHere: boolean;
  get(id: string): Promise<Job>;
  list(q: JobFilter & { collection?: string; limit: number }): Promise<Job[]>;
  cancel(id: string): Promise<Job>;
  extract(req: { collection?: string; files?: ExtractRequest['files']; model?: string; captions?: boolean; chunkSize?: number }): Promise<Job>;
  /** Copies (embedded) or downloads (API) the finished output files into `dir`; returns their paths. */
  saveFiles(id: string, dir: string): Promise<string[]>;
  /** Where the files are: a folder here, or the API's file URLs. */
  filesAt(id: string): Promise<string>;
  close(): Promise<void>;
}

/** The server named by --api or MIRA_API_URL, else the store opened in this process (with `env` over the environment's). */
export async function openJobsBackend(api: string | undefined, env: Partial<Env> = {}): Promise<JobsBackend> {
  const url = api ?? (process.env.MIRA_API_URL || undefined);
  if (url === undefined) {
    const { createContext } = await import('../../context.ts');
    const { loadEnv } = await import('../../config.ts');
    return localBackend(await createContext({ role: 'cli', env: { ...loadEnv(), ...env } }));
  }
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError(`--api must be an http(s) URL, got "${url}"`);
  const key = process.env.MIRA_API_KEY || undefined;
  const { ApiBackend } = await import('../backends/api.ts');
  return apiBackend(new MiraClient({ baseUrl: url, ...(key ? { apiKey: key } : {}) }), new ApiBackend(url, key));
}

function localBackend(ctx: AppContext): JobsBackend {
  const row = async (id: string) => {
    const job = await getJob(ctx.db, id);
    if (!job) throw new UsageError(`no job ${id}`);
    return job;
  };
  const collectionId = async (name: string) => {
    const c = await getCollection(ctx.db, { name });
    if (!c) throw new UsageError(`--collection: no collection named ${name}`);
    return c;
  };
  return {
    runsJobsHere: ctx.queue.kind === 'in-process',
    get: async (id) => toJob(await row(id)),
    async list(q) {
      const { collection, ...filter } = q;
      const c = collection ? await collectionId(collection) : undefined;
      const page = await listJobs(ctx.db, { ...filter, ...(c ? { collectionId: c.id } : {}) });
      return page.items.map(toJob);
    },
    async cancel(id) {
      const job = await cancelJob(ctx.db, ctx.queue, await row(id)).catch((err: unknown) => {
        if (err instanceof JobAlreadyFinished) throw new UsageError(err.message);
        throw err;
      });
      return toJob(job);
    },
    async extract(req) {
      const collection = req.collection ? await collectionId(req.collection) : undefined;
      const { collection: _, model, ...rest } = req;
      return toJob(await startExtraction(ctx, { ...rest, ...(collection ? { collection } : {}), ...(model ? { modelId: model } : {}) }));
    },
    async saveFiles(id, dir) {
      const from = exportDir(ctx.dataDir, id);
      const files = await listOutputFiles(from);
      if (!files.some((f) => f.name === 'manifest.json')) throw new Error(`job ${id} has no finished files`);
      await mkdir(dir, { recursive: true });
      for (const f of files) await copyFile(join(from, f.name), join(dir, f.name));
      return files.map((f) => join(dir, f.name));
    },
    filesAt: async (id) => exportDir(ctx.dataDir, id),
    close: () => ctx.close(),
  };
}

function apiBackend(client: MiraClient, named: ApiBackend): JobsBackend {
  const collectionId = async (name: string) => {
    const c = await named.collection(name, { create: false });
    if (!c) throw new UsageError(`--collection: no collection named ${name}`);
    return c.id;
  };
  return {
    runsJobsHere: false,
    get: (id) => client.getJob(id).catch(usageOn404),
    async list(q) {
      const { collection, ...filter } = q;
      const id = collection ? await collectionId(collection) : undefined;
      return (await client.listJobs({ ...filter, ...(id ? { collectionId: id } : {}) })).items;
    },
    cancel: (id) => client.cancelJob(id).catch(usageOn404),
    async extract(req) {
      const collection = req.collection ? await collectionId(req.collection) : undefined;
      const files = req.files?.kind === 'path' ? { path: req.files.path } : req.files?.kind === 'entries' ? { entries: req.files.entries } : {};
      return client.extract({
        ...(collection ? { collection } : {}),
        ...files,
        ...(req.model ? { model: req.model } : {}),
        ...(req.captions === undefined ? {} : { captions: req.captions }),
        ...(req.chunkSize === undefined ? {} : { chunkSize: req.chunkSize }),
      });
    },
    async saveFiles(id, dir) {
      const { files, complete } = await client.listJobFiles(id);
      if (!complete) throw new Error(`job ${id} has no finished files`);
      await mkdir(dir, { recursive: true });
      for (const f of files) {
        const res = await client.downloadJobFile(id, f.name as OutputFile);
        await pipeline(Readable.fromWeb(res.body! as WebReadableStream<Uint8Array>), createWriteStream(join(dir, f.name)));
      }
      return files.map((f) => join(dir, f.name));
    },
    filesAt: async (id) => `GET /v1/jobs/${id}/files`,
    async close() {},
  };
}

/** An unknown job, or one that has finished (cancel), is the caller's mistake: exit 2. */
function usageOn404(err: unknown): never {
  if (err instanceof MiraApiError && (err.status === 404 || err.code === 'job_finished')) throw new UsageError(err.problem.detail);
  throw err;
}

/**
 * Follows a job until it finishes: a progress bar on stderr (a line every 10% when stderr is not a
 * terminal), or with `json` one JSON line on stdout per change. Resolves with the finished job,
 * or with the job as it stands when `signal` aborts.
 */
export async function followJob(backend: Pick<JobsBackend, 'get'>, job: Job, opts: { json: boolean; signal?: AbortSignal; label?: string }): Promise<Job> {
  const bar = progressBar(opts.label ?? `${job.kind} ${job.id}`, job.progress.total, { enabled: !opts.json });
  let last = '';
  for (;;) {
    const seen = JSON.stringify([job.state, job.progress]);
    if (seen !== last) {
      last = seen;
      if (opts.json) console.log(JSON.stringify({ id: job.id, state: job.state, progress: job.progress }));
      else if (job.progress.total > 0) bar.update(job.progress.done, job.progress.total);
    }
    if (FINISHED.has(job.state) || opts.signal?.aborted) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await backend.get(job.id);
  }
  bar.done();
  return job;
}

/** Exit code of a finished job: 0 completed, 1 otherwise. */
export const jobExitCode = (job: Job): number => (job.state === 'completed' ? 0 : 1);

function printJobs(jobs: Job[], json: boolean): void {
  if (json) return void console.log(JSON.stringify(jobs));
  if (jobs.length === 0) return void console.log('no jobs');
  for (const j of jobs) {
    const p = j.progress.total > 0 ? ` ${j.progress.done}/${j.progress.total}` : '';
    console.log(`${j.id}  ${j.kind.padEnd(9)} ${j.state.padEnd(9)}${p}  ${j.createdAt}${j.error ? `  ${j.error}` : ''}`);
  }
}

export const jobs: Command = {
  summary: 'list, watch and cancel jobs (extract, reextract, finetune)',
  help: `usage: mira jobs list [--state STATE] [--kind KIND] [--collection NAME] [--limit N (20)] [--api URL] [--json]
       mira jobs watch ID [--api URL] [--json]
       mira jobs cancel ID [--api URL] [--json]

list    newest first: id, kind, state, progress, created, error. --kind: extract, reextract or
        finetune (ingest jobs are one per image: \`mira jobs watch ID\`).
watch   follows a job to its end with a progress bar (done/total, rate, ETA) on stderr; with
        --json, one JSON line {id, state, progress} on stdout per change, for scripts.
cancel  a queued job never runs; a running one stops at its next check (within about a second,
        in whichever worker runs it) and is not retried.

${apiHelp}
Without a server and without Redis the jobs run in the process that opened the store, so
\`mira jobs watch\` runs the unfinished ones it finds there.

Exit codes: 0 ok (watch: the job completed), 1 the job failed, was cancelled or lost (watch) or
a server or database error, 2 bad usage or an unknown job, 130 interrupted (the job goes on).

examples:
  mira jobs list --state running
  mira jobs list --kind finetune --collection photos
  mira jobs watch extract_0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10
  mira jobs cancel extract_0b6f3c1e-6d8f-4a57-9d38-2f1b7d1d6a10 --api http://localhost:8080`,
  async run(argv) {
    const { values, positionals } = parse(argv, { state: { type: 'string' }, kind: { type: 'string' }, collection: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean', default: false }, ...apiFlags });
    const [sub, id, ...extra] = positionals;
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (sub !== 'list' && sub !== 'watch' && sub !== 'cancel') throw new UsageError(sub ? `unknown subcommand "${sub}" (list, watch or cancel)` : 'missing subcommand: list, watch or cancel');
    if (sub !== 'list' && !id) throw new UsageError(`missing job ID: mira jobs ${sub} ID`);
    if (sub === 'list' && id) throw new UsageError(`unexpected argument "${id}"`);
    const filter: JobFilter = {
      ...(values.state !== undefined ? { state: oneOf('--state', values.state, jobStates) } : {}),
      ...(values.kind !== undefined ? { kind: oneOf('--kind', values.kind, listedJobKinds) } : {}),
    };
    const backend = await openJobsBackend(values.api);
    try {
      if (sub === 'list') {
        printJobs(await backend.list({ limit: intFlag(values.limit, 'limit', 20), ...filter, ...(values.collection ? { collection: values.collection } : {}) }), values.json);
        return 0;
      }
      if (sub === 'cancel') {
        const job = await backend.cancel(id!);
        if (values.json) console.log(JSON.stringify(job));
        else console.log(`job ${job.id} ${job.state}`);
        return 0;
      }
      const stop = interruptSignal();
      try {
        const job = await followJob(backend, await backend.get(id!), { json: values.json, signal: stop.signal });
        if (stop.signal.aborted) return EXIT_INTERRUPTED;
        if (!values.json) console.log(`job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
        return jobExitCode(job);
      } finally {
        stop.release();
      }
    } finally {
      await backend.close();
    }
  },
};

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { MiraClient, type Job } from '../../../sdk/src/index.ts';
import type { AppContext } from '../../context.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { getJob } from '../../db/queries/jobs.ts';
import { MAX_PAIRS } from '../../finetune/payload.ts';
import { finetuneRequest, FinetuneRefused, startFinetune, type FinetuneRequest } from '../../finetune/start.ts';
import { sha256Hex } from '../../storage/blob.ts';
import { apiFlags, apiHelp } from '../backend.ts';
import type { ApiBackend } from '../backends/api.ts';
import { EXIT_INTERRUPTED, intFlag, interruptSignal, parse, UsageError, type Command } from '../command.ts';
import { toJob } from '../../api/routes/jobs/schema.ts';
import { followJob, jobExitCode, type JobsBackend } from './jobs.ts';

export const finetune: Command = {
  summary: "fine-tune a collection's BLIP model on its captions or on a JSONL of pairs",
  help: `usage: mira finetune --collection NAME [--pairs FILE] [--edited-only] [--steps N (200)] [--holdout F (0.1)]
                     [--batch N (32)] [--seed N] [--timeout SECONDS (3600)] [--reextract] [--wait] [--api URL] [--json]

Queues a fine-tuning job: the Python trainer (MIRA_PYTHON with torch; the GPU when torch sees
one) trains the collection's embedder on image–caption pairs and holds out --holdout of the
images. The new version is registered only if held-out text→image R@1 (ITC) improves; both
figures are printed. --reextract then re-extracts the collection with it.

Pairs: the collection's captions (a caption set as metadata.caption wins over the model's;
--edited-only keeps only those), or --pairs FILE, a JSONL of {"image", "caption"} (or "captions":
[...]) where "image" is an image id, the sha256 of an image's bytes, or a path (relative to FILE)
to a file whose bytes are already in the collection.

--wait follows the job with a progress bar of its steps on stderr (always when the jobs run in
this process: embedded, no Redis); Ctrl-C stops waiting.
${apiHelp}
--json: the job as one JSON line at the end (with --wait, one {id, state, progress} line per
change before it).
Exit codes: 0 queued (without --wait) or completed (registered or not), 1 the job failed, was
cancelled or lost, 2 bad usage or input (the file and line, or the field), 130 interrupted.

examples:
  mira finetune --collection scenes --steps 300 --wait
  mira finetune --collection scenes --pairs pairs.jsonl --reextract --wait`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        collection: { type: 'string' },
        pairs: { type: 'string' },
        'edited-only': { type: 'boolean', default: false },
        steps: { type: 'string' },
        holdout: { type: 'string' },
        batch: { type: 'string' },
        seed: { type: 'string' },
        timeout: { type: 'string' },
        reextract: { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        ...apiFlags,
      },
      false,
    );
    if (!values.collection) throw new UsageError('missing --collection NAME');
    const raw = {
      source: values.pairs ? { kind: 'pairs', pairs: await readPairsFile(values.pairs) } : { kind: 'captions', include: values['edited-only'] ? 'edited' : 'all' },
      reextract: values.reextract,
      ...(values.steps !== undefined ? { steps: intFlag(values.steps, 'steps', 0) } : {}),
      ...(values.holdout !== undefined ? { holdout: Number(values.holdout) } : {}),
      ...(values.batch !== undefined ? { batch: intFlag(values.batch, 'batch', 0) } : {}),
      ...(values.seed !== undefined ? { seed: Number(values.seed) } : {}),
      ...(values.timeout !== undefined ? { timeoutSeconds: intFlag(values.timeout, 'timeout', 0) } : {}),
    };
    const parsed = finetuneRequest.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new UsageError(`${flagOf(issue.path)}: ${issue.message}`);
    }
    const backend = await openFinetuneBackend(values.api);
    try {
      let job = await backend.start(values.collection, parsed.data);
      if (!values.json) console.error(`${values.collection}: fine-tuning in job ${job.id}`);
      if (values.wait || backend.runsJobsHere) {
        const stop = interruptSignal();
        try {
          job = await followJob(backend, job, { json: values.json, signal: stop.signal, label: 'fine-tuning steps' });
        } finally {
          stop.release();
        }
      }
      print(job, values.json);
      return job.state === 'queued' || job.state === 'running' ? (values.wait || backend.runsJobsHere ? EXIT_INTERRUPTED : 0) : jobExitCode(job);
    } finally {
      await backend.close();
    }
  },
};

const flagOf = (path: PropertyKey[]) => (path[0] === 'source' ? `--pairs ${path.slice(1).join('.')}` : `--${String(path[0] ?? '(options)')}`);

/**
 * The pairs of a JSONL file, each naming its image by id, sha256, or a file path (hashed here, so
 * the file need not be on the server). A bad line is a UsageError naming the file and line.
 */
export async function readPairsFile(file: string): Promise<{ image: string; caption: string }[]> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`${file}: ${err.message}`);
  });
  const out: { image: string; caption: string }[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    const where = `${file}:${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`${where}: not JSON (${(err as Error).message})`);
    }
    const image = row?.image ?? row?.file;
    if (typeof image !== 'string' || !image) throw new UsageError(`${where}: field "image" must be a non-empty string`);
    const captions = Array.isArray(row.captions) ? row.captions : [row.caption];
    if (!captions.length || !captions.every((c) => typeof c === 'string' && c.trim())) {
      throw new UsageError(`${where}: field "caption" must be a non-empty string (or "captions" a list of them)`);
    }
    const ref = /^[0-9a-f]{64}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(image) ? image.toLowerCase() : await hashFile(resolve(dirname(file), image), where);
    for (const caption of captions as string[]) out.push({ image: ref, caption: caption.trim() });
    if (out.length > MAX_PAIRS) throw new UsageError(`${file}: more than ${MAX_PAIRS} pairs`);
  }
  if (out.length === 0) throw new UsageError(`${file}: no pairs`);
  return out;
}

async function hashFile(path: string, where: string): Promise<string> {
  const bytes = await readFile(path).catch(() => {
    throw new UsageError(`${where}: field "image": ${path} is neither an image id, a sha256 nor a readable file`);
  });
  return sha256Hex(bytes);
}

interface FinetuneBackend extends Pick<JobsBackend, 'runsJobsHere' | 'get' | 'close'> {
  start(collection: string, req: FinetuneRequest): Promise<Job>;
}

async function openFinetuneBackend(api: string | undefined): Promise<FinetuneBackend> {
  const url = api ?? (process.env.MIRA_API_URL || undefined);
  if (url === undefined) {
    const { createContext } = await import('../../context.ts');
    return localBackend(await createContext({ role: 'cli' }));
  }
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError(`--api must be an http(s) URL, got "${url}"`);
  const key = process.env.MIRA_API_KEY || undefined;
  const { ApiBackend } = await import('../backends/api.ts');
  return apiBackend(new MiraClient({ baseUrl: url, ...(key ? { apiKey: key } : {}) }), new ApiBackend(url, key));
}

function localBackend(ctx: AppContext): FinetuneBackend {
  return {
    runsJobsHere: ctx.queue.kind === 'in-process',
    async start(name, req) {
      const collection = await getCollection(ctx.db, { name });
      if (!collection) throw new UsageError(`--collection: no collection named ${name}`);
      const row = await startFinetune(ctx, collection, req).catch((err: unknown) => {
        if (err instanceof FinetuneRefused) throw new UsageError(`${err.pointer ? `${err.pointer}: ` : ''}${err.message}`);
        throw err;
      });
      return toJob(row);
    },
    get: async (id) => toJob((await getJob(ctx.db, id))!),
    close: () => ctx.close(),
  };
}

function apiBackend(client: MiraClient, named: ApiBackend): FinetuneBackend {
  return {
    runsJobsHere: false,
    async start(name, req) {
      const collection = await named.collection(name, { create: false });
      if (!collection) throw new UsageError(`--collection: no collection named ${name}`);
      return client.finetune({ ...req, collection: collection.id });
    },
    get: (id) => client.getJob(id),
    async close() {},
  };
}

function print(job: Job, json: boolean): void {
  if (json) return console.log(JSON.stringify(job));
  const r = job.result as
    | { registered: boolean; modelId?: string; from: string; reason?: string; before: Score; after: Score; pairs: number; steps: number; seconds: number; reextract?: { jobId?: string; error?: string } }
    | undefined;
  if (job.state !== 'completed' || !r) return console.log(`job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ''}`);
  const fig = (s: Score) => `ITC R@1 ${s.t2i_itc_r1}, re-rank R@1 ${s.t2i_rerank_r1}`;
  console.log(`held-out (${r.before.queries} captions of ${r.before.images} images): before ${fig(r.before)}; after ${fig(r.after)}`);
  console.log(`${r.pairs} pairs, ${r.steps} steps, ${r.seconds} s`);
  console.log(r.registered ? `registered ${r.modelId} (from ${r.from})` : `not registered: ${r.reason}`);
  if (r.reextract) console.log(r.reextract.jobId ? `re-extracting in job ${r.reextract.jobId}` : `re-extraction not started: ${r.reextract.error}`);
}

interface Score {
  t2i_itc_r1: number;
  t2i_rerank_r1: number;
  queries: number;
  images: number;
}

import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Db } from '../db/client.ts';
import { getCollection } from '../db/queries/collections.ts';
import { getJob } from '../db/queries/jobs.ts';
import { getModel, listModels, modelId, type Model } from '../db/queries/models.ts';
import { readManifest } from '../inference/bundle.ts';
import { isInferenceError } from '../inference/errors.ts';
import type { Manifest } from '../inference/manifest.ts';
import { PermanentJobError, type JobRun } from '../jobs/types.ts';
import { registerBundle } from '../models/registry.ts';
import type { BlobStore } from '../storage/blob.ts';
import { MIN_IMAGES, notFinetunable } from './base.ts';
import { collectPairs, writePairsFile } from './pairs.ts';
import type { FinetunePayload } from './payload.ts';
import { probePython, runTrainer, type TrainerEvent, type TrainerRun } from './trainer.ts';

export interface FinetuneDeps {
  db: Db;
  blobs: BlobStore;
  /** Fine-tuned bundles go to `<dataDir>/models/<job id>`, work files to `<dataDir>/finetune/<job id>`. */
  dataDir: string;
  python: string;
  /** Starts re-extracting the collection with a model; returns the job's id. */
  startReextraction?(collectionId: string, modelId: string): Promise<string>;
}

/**
 * The figure that decides registration: held-out text→image R@1 of ITC alone, since the index
 * ranks by ITC (re-ranking only reorders its top candidates). The re-rank figure is reported too.
 */
export const DECIDING_METRIC = 't2i_itc_r1';

const Score = z.object({ t2i_itc_r1: z.number(), t2i_rerank_r1: z.number(), queries: z.number(), images: z.number(), k: z.number() });
export type HoldoutScore = z.infer<typeof Score>;
const Report = z.object({
  name: z.string(),
  version: z.string(),
  pairs: z.number(),
  images: z.number(),
  trainPairs: z.number(),
  holdoutPairs: z.number(),
  steps: z.number(),
  before: Score,
  after: Score,
  seconds: z.number(),
});

export interface FinetuneResult {
  registered: boolean;
  /** The version the job started from (the collection's embedder). */
  from: string;
  /** The new version, when registered. */
  modelId?: string;
  metric: typeof DECIDING_METRIC;
  before: HoldoutScore;
  after: HoldoutScore;
  pairs: number;
  images: number;
  trainPairs: number;
  holdoutPairs: number;
  /** Pairs named by the source that were left out (deleted or not ready images, no caption). */
  skippedPairs: number;
  steps: number;
  trainerSeconds: number;
  seconds: number;
  /** Why nothing was registered. */
  reason?: string;
  reextract?: { jobId: string } | { error: string };
}

const UNCHANGED = 'the active model is unchanged';

/**
 * Fine-tunes a collection's embedder on image–caption pairs with `python -m mira_blip.finetune`
 * and registers the new version only if held-out R@1 improved. Every failure (no usable Python, a
 * non-zero exit, a timeout, a bad bundle) leaves the registered models and the collection as they
 * were and says why.
 */
export async function finetune(deps: FinetuneDeps, p: FinetunePayload, run: JobRun): Promise<FinetuneResult> {
  const t0 = performance.now();
  const noPython = await probePython(deps.python);
  if (noPython) throw new PermanentJobError(noPython, 'python_unavailable');
  const collection = await getCollection(deps.db, { id: p.collectionId });
  if (!collection) throw new PermanentJobError(`no collection ${p.collectionId}`, 'not_found');
  const base = (await getModel(deps.db, collection.embedder))!;
  const unsuitable = notFinetunable(base);
  if (unsuitable) throw new PermanentJobError(`collection ${collection.name} is searched by ${unsuitable}`, 'model_unsuitable');
  const target = join(deps.dataDir, 'models', safeName(run.id));
  // A try that registered its version and then lost its worker: the work is done.
  const done = (await listModels(deps.db)).find((m) => m.path === target);
  if (done) return { ...(await resultFrom(target, base, 0, t0)), registered: true, modelId: done.id };

  const work = join(deps.dataDir, 'finetune', safeName(run.id));
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const { pairs, skipped } = await collectPairs(deps.db, collection.id, p.source);
    const images = new Set(pairs.map((x) => x.imageId)).size;
    if (images < MIN_IMAGES) {
      throw new PermanentJobError(`${images} images of collection ${collection.name} have a caption to train on (${skipped} left out); fine-tuning needs at least ${MIN_IMAGES}`, 'too_few_pairs');
    }
    const figures: Record<string, number> = { pairs: pairs.length, images };
    await run.progress({ done: 0, total: p.steps, ...figures });
    const { file: pairsFile, dropped } = await writePairsFile(deps.blobs, pairs, work);
    // Images deleted since the pairs were listed: left out like the ones without a caption.
    const leftOut = skipped + dropped;
    const version = await nextFreeVersion(deps.db, base);
    const out = join(work, 'bundle');
    const trainer = await train(deps, p, run, { base, pairsFile, work, out, version, figures });
    await failIfStopped(deps.db, run, trainer, p.timeoutSeconds);

    const result = await resultFrom(out, base, leftOut, t0);
    await checkBundle(out, base, version);
    if (!(result.after[DECIDING_METRIC] > result.before[DECIDING_METRIC])) {
      const reason = `held-out ${DECIDING_METRIC} did not improve (${result.before[DECIDING_METRIC]} before, ${result.after[DECIDING_METRIC]} after): not registered, ${UNCHANGED}`;
      run.log.info({ jobId: run.id, before: result.before, after: result.after }, 'fine-tuned version not registered');
      return { ...result, registered: false, reason };
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(out, target);
    const model = await registerBundle(deps.db, target).then(
      (r) => r.model,
      async (err: Error) => {
        await rm(target, { recursive: true, force: true });
        throw new PermanentJobError(`the fine-tuned bundle could not be registered (${err.message}); ${UNCHANGED}`, 'register_failed');
      },
    );
    run.log.info({ jobId: run.id, from: base.id, to: model.id, before: result.before, after: result.after }, 'fine-tuned version registered');
    const done: FinetuneResult = { ...result, registered: true, modelId: model.id, seconds: seconds(t0) };
    if (p.reextract && deps.startReextraction) {
      done.reextract = await deps.startReextraction(collection.id, model.id).then(
        (jobId) => ({ jobId }),
        (err: Error) => ({ error: err.message }),
      );
    }
    return done;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function train(
  deps: FinetuneDeps,
  p: FinetunePayload,
  run: JobRun,
  w: { base: Model; pairsFile: string; work: string; out: string; version: string; figures: Record<string, number> },
): Promise<TrainerRun> {
  const args = [
    '--bundle', w.base.path, '--pairs', w.pairsFile, '--images-root', w.work, '--out', w.out, '--version', w.version,
    '--steps', String(p.steps), '--holdout', String(p.holdout), '--batch', String(p.batch), '--lr', String(p.lr),
    '--seed', String(p.seed), '--device', p.device,
  ];
  let step = 0;
  let reported = Promise.resolve();
  const onEvent = (e: TrainerEvent) => {
    const f = eventFigures(e);
    if (!f) return;
    if (f.step !== undefined) step = f.step;
    delete f.step;
    Object.assign(w.figures, f);
    const snapshot = { done: step, total: p.steps, ...w.figures };
    reported = reported.then(() => run.progress(snapshot)).catch((err: Error) => run.log.warn({ jobId: run.id, err: err.message }, 'progress not recorded'));
  };
  const trainer = await runTrainer({ python: deps.python, args, timeoutMs: p.timeoutSeconds * 1000, signal: run.signal, onEvent }).catch((err: Error) => {
    throw new PermanentJobError(`MIRA_PYTHON=${deps.python} could not be started (${err.message}); ${UNCHANGED}`, 'python_unavailable');
  });
  await reported;
  return trainer;
}

/** The numbers of a trainer event that go into the job's progress. */
function eventFigures(e: TrainerEvent): Record<string, number> | undefined {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const pick = (entries: [string, unknown][]) => Object.fromEntries(entries.filter(([, v]) => num(v) !== undefined)) as Record<string, number>;
  if (e.event === 'start') return pick([['trainPairs', e.train_pairs], ['holdoutPairs', e.holdout_pairs]]);
  if (e.event === 'step') return pick([['step', e.step], ['loss', e.loss], ['secondsPerStep', e.s_per_step]]);
  if (e.event === 'eval' && (e.when === 'before' || e.when === 'after')) {
    return pick([[`${e.when}ItcR1`, e.t2i_itc_r1], [`${e.when}RerankR1`, e.t2i_rerank_r1]]);
  }
  return undefined;
}

/** Turns a trainer that did not exit 0 into the job's failure: a cancel, a timeout, a shutdown, or the trainer's reason. */
async function failIfStopped(db: Db, run: JobRun, t: TrainerRun, timeoutSeconds: number): Promise<void> {
  if (t.stopped === 'timeout') throw new PermanentJobError(`the trainer ran past timeoutSeconds=${timeoutSeconds} and was stopped; ${UNCHANGED}`, 'finetune_timeout');
  if (t.stopped === 'aborted') {
    if ((await getJob(db, run.id))?.state === 'cancelled') throw new PermanentJobError(`cancelled: the trainer was stopped; ${UNCHANGED}`, 'cancelled');
    throw new Error(`the worker is stopping: the trainer was stopped; ${UNCHANGED}, and the job starts again`);
  }
  if (t.code === 0) return;
  const why = t.error ?? (t.stderrTail.split('\n').at(-1) || (t.signal ? `killed by ${t.signal}` : 'no message'));
  if (t.code === 3) throw new PermanentJobError(`${why}; ${UNCHANGED}`, 'python_unavailable');
  if (t.code === 2) throw new PermanentJobError(`the trainer refused its input: ${why}; ${UNCHANGED}`, 'finetune_bad_input');
  const exit = t.code === null ? `was killed by ${t.signal}` : `exited with code ${t.code}`;
  throw new PermanentJobError(`the trainer ${exit}: ${why}; ${UNCHANGED}`, 'finetune_failed');
}

/** The figures of the trainer's report.json; a missing or malformed report fails the job. */
async function resultFrom(dir: string, base: Model, skipped: number, t0: number): Promise<FinetuneResult> {
  const file = join(dir, 'report.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new PermanentJobError(`${file}: ${(err as Error).message}; ${UNCHANGED}`, 'bundle_invalid');
  }
  const parsed = Report.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PermanentJobError(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}; ${UNCHANGED}`, 'bundle_invalid');
  }
  const r = parsed.data;
  return {
    registered: false, from: base.id, metric: DECIDING_METRIC, before: r.before, after: r.after, pairs: r.pairs, images: r.images,
    trainPairs: r.trainPairs, holdoutPairs: r.holdoutPairs, skippedPairs: skipped, steps: r.steps, trainerSeconds: r.seconds, seconds: seconds(t0),
  };
}

/** The bundle reader's checks, and that the trainer wrote the version it was asked for, of the same model. */
async function checkBundle(dir: string, base: Model, version: string): Promise<void> {
  let m: Manifest;
  try {
    m = await readManifest(dir);
  } catch (err) {
    if (!isInferenceError(err)) throw err;
    throw new PermanentJobError(`the fine-tuned bundle is not valid: ${err.message}; ${UNCHANGED}`, 'bundle_invalid');
  }
  const want = { name: base.name, version, family: base.family, embedDim: base.embedDim };
  const got = { name: m.name, version: m.version, family: m.family, embedDim: m.embedDim };
  if (JSON.stringify(want) !== JSON.stringify(got)) {
    throw new PermanentJobError(`the fine-tuned bundle's manifest says ${JSON.stringify(got)}, expected ${JSON.stringify(want)}; ${UNCHANGED}`, 'bundle_invalid');
  }
}

/** The base version incremented (trailing digits, else `.1` appended), past every registered one. */
export async function nextFreeVersion(db: Db, base: Pick<Model, 'name' | 'version'>): Promise<string> {
  let v = base.version;
  do {
    const m = /(\d+)$/.exec(v);
    v = m ? v.slice(0, m.index) + String(Number(m[1]) + 1) : `${v}.1`;
  } while (await getModel(db, modelId(base.name, v)));
  return v;
}

const safeName = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, '_');
const seconds = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

import { resolve } from 'node:path';
import { dataDirOf, loadEnv, runtimeOptions, type Env } from './config.ts';
import { analyze, openDatabaseFor, type Database, type Db } from './db/client.ts';
import { getModel, getActiveModel, setActiveModel, type Model } from './db/queries/models.ts';
import { openTokenStore, tokenSource, type TokenFeatureStore, type TokenSource } from './features/store.ts';
import type { Runtime } from './inference/runtime.ts';
import { IndexRegistry } from './index/index.ts';
import { ingestLimits, type IngestLimits } from './ingest/limits.ts';
import { BullJobQueue } from './jobs/bull.ts';
import { InProcessJobQueue } from './jobs/in-process.ts';
import { processors, IMPLEMENTED_KINDS } from './jobs/processors/index.ts';
import type { ExtractDeps } from './extract/run.ts';
import type { FinetuneDeps } from './finetune/run.ts';
import type { IngestProcessorDeps } from './jobs/processors/ingest.ts';
import { ExtractionWriter } from './jobs/processors/writer.ts';
import { processorTable } from './jobs/registry.ts';
import { RECONCILE_GRACE, reconcile } from './jobs/reconcile.ts';
import type { JobQueue } from './jobs/types.ts';
import { createLogger, type Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { listCollections } from './db/queries/collections.ts';
import { countJobsByState } from './db/queries/jobs.ts';
import { BundleUnavailable, registerBundle, RuntimeCache, verifiedBundlePath } from './models/registry.ts';
import { blobStoreIn, type BlobStore } from './storage/blob.ts';

/** How long a model whose bundle files are gone or changed is refused before they are checked again. */
const UNAVAILABLE_RECHECK_MS = 60_000;

/** Everything a Mira process holds, built once at startup and passed down. */
export interface AppContext {
  env: Env;
  log: Logger;
  /** embedded: PGlite and in-process jobs; service: Postgres and, with REDIS_URL, BullMQ. */
  mode: 'embedded' | 'service';
  dataDir: string;
  db: Db;
  blobs: BlobStore;
  features: TokenFeatureStore;
  tokens: TokenSource;
  runtimes: RuntimeCache;
  indexes: IndexRegistry;
  queue: JobQueue;
  limits: IngestLimits;
  /** The open runtime of a registered model. */
  runtime(modelId: string): Promise<Runtime>;
  /** The model registered from MIRA_MODEL_DIR at startup. */
  defaultModel: Model;
  metrics: Metrics;
  /** True once `warm()` has loaded the models and indexes the collections need (/readyz). */
  ready(): boolean;
  /** Opens every collection's models and indexes, so the first queries do not pay for it. */
  warm(): Promise<void>;
  /** Work that outlives the request that started it (purging a deleted collection's blobs): logged when it ends; close() waits for it. */
  background(name: string, task: () => Promise<unknown>): void;
  close(): Promise<void>;
}

export interface ContextOptions {
  /** api: serves and follows Postgres; worker: runs BullMQ jobs; cli: a one-shot command. */
  role: 'api' | 'worker' | 'cli';
  env?: Env;
  log?: Logger;
}

export async function createContext(opts: ContextOptions): Promise<AppContext> {
  const env = opts.env ?? loadEnv();
  const log = opts.log ?? createLogger(`mira-${opts.role}`);
  const dataDir = dataDirOf(env);
  const database: Database = await openDatabaseFor(env);
  const db = database.db;
  const metrics = createMetrics();
  const runtimes = new RuntimeCache({
    ...runtimeOptions(env),
    onWarning: (m) => log.warn(m),
    onBatch: (graph, e) => {
      metrics.inferenceBatchSize.observe({ graph }, e.size);
      metrics.inferenceQueueWait.observe({ graph }, e.queueWaitMs / 1000);
    },
  });
  // A registered name@version never changes (its checksum is fixed): checked once, its path is cached.
  // One whose files are gone or changed is remembered for a minute, so that ingest, which leaves such
  // a version out image after image, does not hash the whole folder again for each.
  const modelPaths = new Map<string, string>();
  const unavailable = new Map<string, { err: BundleUnavailable; until: number }>();
  const runtime = async (modelId: string) => {
    let path = modelPaths.get(modelId);
    if (!path) {
      const known = unavailable.get(modelId);
      if (known && Date.now() < known.until) throw known.err;
      const model = await getModel(db, modelId);
      if (!model) throw new Error(`model ${modelId} is not registered`);
      path = await verifiedBundlePath(model).catch((err: unknown) => {
        if (err instanceof BundleUnavailable) unavailable.set(modelId, { err, until: Date.now() + UNAVAILABLE_RECHECK_MS });
        throw err;
      });
      modelPaths.set(modelId, path);
    }
    return runtimes.get(modelId, path);
  };
  const blobs = blobStoreIn(dataDir);
  const features = await openTokenStore(resolve(dataDir, 'features'));
  const { model: defaultModel } = await registerBundle(db, env.MIRA_MODEL_DIR);
  // registerBundle has just hashed these files and matched them to the row: no second check.
  if (defaultModel.path === resolve(env.MIRA_MODEL_DIR)) modelPaths.set(defaultModel.id, defaultModel.path);
  if (!(await getActiveModel(db))) await setActiveModel(db, defaultModel.id);

  // Service replicas follow Postgres; a single embedded process syncs right after its own writes.
  const follows = opts.role === 'api' && database.mode === 'service';
  const indexes = new IndexRegistry({ db, dataDir, logger: log, ...(follows ? { followMs: 500 } : {}) });
  const tokens = tokenSource(env.MIRA_TOKEN_FEATURES, { db, features, blobs, runtime });
  const table = processorTable(processors, IMPLEMENTED_KINDS);
  let deps: ProcessorDeps | undefined;
  const queue: JobQueue = env.REDIS_URL
    ? await BullJobQueue.connect(table, { redisUrl: env.REDIS_URL, prefix: env.MIRA_QUEUE_PREFIX })
    : new InProcessJobQueue(() => deps!, table, log);
  let isReady = false;
  const tasks = new Set<Promise<void>>();
  const ctx: AppContext = {
    env, log, mode: database.mode, dataDir, db, blobs, features, tokens, runtimes, indexes, queue, runtime, defaultModel, metrics,
    limits: ingestLimits(env),
    ready: () => isReady,
    async warm() {
      // PGlite has no autovacuum: without statistics its planner scans whole tables.
      if (database.mode === 'embedded') await analyze(db);
      await runtime(defaultModel.id);
      for (const c of await listCollections(db)) {
        try {
          for (const m of new Set([c.embedder, c.reranker, c.captioner])) if (m) await runtime(m);
          await indexes.get(c.id, c.embedder);
        } catch (err) {
          // One broken bundle must not keep the whole server unready: its queries fail with the reason.
          log.warn({ collection: c.name, err: (err as Error).message }, 'could not load a collection at startup');
        }
      }
      isReady = true;
    },
    background(name, task) {
      const done: Promise<void> = task().then(
        (result) => log.info({ task: name, result }, 'background task done'),
        (err: unknown) => log.error({ task: name, err }, 'background task failed'),
      ).finally(() => tasks.delete(done));
      tasks.add(done);
    },
    async close() {
      await Promise.all(tasks);
      await queue.close();
      await indexes.close();
      await runtimes.close();
      await features.close();
      await database.close();
    },
  };
  deps = processorDeps(ctx);
  metrics.collectors.push(async () => {
    for (const [kind, n] of Object.entries(await queue.depths())) metrics.queueDepth.set({ kind }, n);
    for (const index of await indexes.all()) {
      const { collectionId, modelId } = index.ids;
      const s = index.stats();
      metrics.indexSize.set({ collection: collectionId, model: modelId }, s.count);
      metrics.indexTombstoneRatio.set({ collection: collectionId, model: modelId }, s.tombstoneRatio);
    }
    metrics.jobs.reset();
    for (const r of await countJobsByState(db)) metrics.jobs.set({ kind: r.kind, state: r.state }, r.n);
  });
  // Without Redis the jobs run here, so this process picks up what a previous run left pending. In
  // embedded mode nothing else can run them (PGlite is this process's alone): every unfinished
  // record counts at once. A Postgres may be shared with other processes whose jobs are alive, so
  // there only records untouched for the usual grace count.
  if (queue.kind === 'in-process' && opts.role !== 'worker') {
    await reconcile(db, queue, log, database.mode === 'embedded' ? { runningMs: 0, queuedMs: 0 } : RECONCILE_GRACE);
  }
  return ctx;
}

export type ProcessorDeps = IngestProcessorDeps & FinetuneDeps & ExtractDeps;

/** What the job processors get from the context. */
export function processorDeps(ctx: AppContext): ProcessorDeps {
  return {
    db: ctx.db,
    blobs: ctx.blobs,
    features: ctx.features,
    runtime: ctx.runtime,
    captionOnIngest: ctx.env.MIRA_CAPTION_ON_INGEST,
    dataDir: ctx.dataDir,
    python: ctx.env.MIRA_PYTHON,
    limits: ctx.limits,
    // Imported when used: re-extraction's start queues jobs through this context.
    startReextraction: async (collectionId, modelId) => (await (await import('./reextract/start.ts')).startReextraction(ctx, collectionId, modelId)).job.id,
    // Without Redis the jobs run in this process, which holds the index: it applies its own writes at once.
    writer: new ExtractionWriter(ctx.db, ctx.env.REDIS_URL ? undefined : (collectionId, modelId) => afterLocalWrite(ctx, collectionId, modelId)),
  };
}

const writesSinceAnalyze = new WeakMap<AppContext, number>();

/** Jobs run here: apply the write to this process's index, and keep embedded statistics fresh. */
async function afterLocalWrite(ctx: AppContext, collectionId: string, modelId: string): Promise<void> {
  await syncIndex(ctx, collectionId, modelId);
  if (ctx.mode !== 'embedded') return;
  const n = (writesSinceAnalyze.get(ctx) ?? 0) + 1;
  writesSinceAnalyze.set(ctx, n % 200);
  if (n === 200) await analyze(ctx.db);
}

const pendingSyncs = new WeakMap<AppContext, Map<string, () => Promise<void>>>();

/**
 * Applies this process's own writes to its index. Calls that arrive while a sync runs share the
 * one sync that starts after it, so a burst of finished jobs costs two syncs, not one each.
 */
function syncIndex(ctx: AppContext, collectionId: string, modelId: string): Promise<void> {
  let byIndex = pendingSyncs.get(ctx);
  if (!byIndex) pendingSyncs.set(ctx, (byIndex = new Map()));
  const key = `${collectionId}/${modelId}`;
  let request = byIndex.get(key);
  if (!request) {
    request = coalesced(async () => void (await (await ctx.indexes.get(collectionId, modelId)).sync()));
    byIndex.set(key, request);
  }
  return request();
}

/** Wraps `fn` so that concurrent callers share runs: at most one running and one queued. */
export function coalesced(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const start = (): Promise<void> => {
    running = fn().finally(() => (running = undefined));
    return running;
  };
  return () => {
    if (!running) return start();
    queued ??= running.catch(() => {}).then(() => {
      queued = undefined;
      return start();
    });
    return queued;
  };
}

/**
 * Embedder versions from the command line (`mira models activate`, `mira collections reextract |
 * rollback | delete-version`): the store opened in this process, or a running server through the
 * SDK (--api URL or MIRA_API_URL), answering in the same shapes.
 */
import { MiraApiError, MiraClient } from '../../sdk/src/index.ts';
import type { AppContext } from '../context.ts';
import { NotFound } from '../db/errors.ts';
import { getCollection } from '../db/queries/collections.ts';
import { getJob, type Job } from '../db/queries/jobs.ts';
import { listModels } from '../db/queries/models.ts';
import { toModel, type Model } from '../api/routes/models/schema.ts';
import { activateModel, startReextraction } from '../reextract/start.ts';
import { deleteVersion, rollbackVersion } from '../reextract/versions.ts';
import { UsageError } from './command.ts';

export interface JobView {
  id: string;
  collection: string;
  state: Job['state'];
  progress: { done: number; total: number };
  error: string | null;
  result?: unknown;
}

export interface CollectionView {
  name: string;
  embedder: string;
  pendingEmbedder: string | null;
  previousEmbedder: string | null;
}

export interface VersionOps {
  /** Jobs run in this process (embedded without Redis): the command must wait for them. */
  readonly runsJobsHere: boolean;
  /** Registered models, oldest first, as GET /v1/models answers. */
  models(): Promise<Model[]>;
  activate(modelId: string): Promise<{ model: string; jobs: JobView[] }>;
  reextract(collection: string, modelId: string): Promise<JobView>;
  rollback(collection: string): Promise<CollectionView>;
  deleteVersion(collection: string, modelId: string): Promise<{ collection: CollectionView; deleted: number }>;
  job(id: string, collection: string): Promise<JobView>;
  close(): Promise<void>;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled', 'lost']);

/** Polls the jobs until all have finished, printing progress lines to stderr. */
export async function follow(ops: VersionOps, jobs: JobView[], quiet: boolean): Promise<JobView[]> {
  const out: JobView[] = [];
  for (const first of jobs) {
    let job = first;
    let last = '';
    while (!FINISHED.has(job.state)) {
      const line = `${job.collection}: job ${job.id} ${job.state} ${job.progress.done}/${job.progress.total}`;
      if (!quiet && line !== last) console.error(line);
      last = line;
      await new Promise((r) => setTimeout(r, 500));
      job = await ops.job(job.id, job.collection);
    }
    out.push(job);
  }
  return out;
}

export async function openVersionOps(api: string | undefined): Promise<VersionOps> {
  const url = api ?? (process.env.MIRA_API_URL || undefined);
  if (url === undefined) {
    const { createContext } = await import('../context.ts');
    return new LocalVersions(await createContext({ role: 'cli' }));
  }
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError(`--api must be an http(s) URL, got "${url}"`);
  return new ApiVersions(new MiraClient({ baseUrl: url, ...(process.env.MIRA_API_KEY ? { apiKey: process.env.MIRA_API_KEY } : {}) }));
}

const jobView = (j: Pick<Job, 'id' | 'state' | 'error'> & { progress: unknown; result?: unknown }, collection: string): JobView => ({
  id: j.id,
  collection,
  state: j.state,
  progress: j.progress as JobView['progress'],
  error: j.error,
  ...(j.result === null || j.result === undefined ? {} : { result: j.result }),
});
const collectionView = (c: CollectionView): CollectionView => ({ name: c.name, embedder: c.embedder, pendingEmbedder: c.pendingEmbedder, previousEmbedder: c.previousEmbedder });

class LocalVersions implements VersionOps {
  readonly runsJobsHere: boolean;
  constructor(private readonly ctx: AppContext) {
    this.runsJobsHere = ctx.queue.kind === 'in-process';
  }

  private async named(name: string) {
    const c = await getCollection(this.ctx.db, { name });
    if (!c) throw new UsageError(`no collection named ${name}`);
    return c;
  }

  async models() {
    return (await listModels(this.ctx.db)).map(toModel);
  }

  async activate(modelId: string) {
    const { model, reextractions } = await activateModel(this.ctx, modelId).catch(unknownModel);
    return { model: model.id, jobs: reextractions.map((r) => jobView(r.job, r.collection.name)) };
  }

  async reextract(collection: string, modelId: string) {
    const c = await this.named(collection);
    return jobView((await startReextraction(this.ctx, c.id, modelId).catch(unknownModel)).job, c.name);
  }

  async rollback(collection: string) {
    return collectionView(await rollbackVersion(this.ctx.db, (await this.named(collection)).id));
  }

  async deleteVersion(collection: string, modelId: string) {
    const c = await this.named(collection);
    const { deleted } = await deleteVersion(this.ctx.db, { collectionId: c.id, modelId }).catch(unknownModel);
    await this.ctx.indexes.drop(c.id, modelId);
    return { collection: collectionView((await getCollection(this.ctx.db, { id: c.id }))!), deleted };
  }

  async job(id: string, collection: string) {
    const j = await getJob(this.ctx.db, id);
    if (!j) throw new Error(`job ${id} is gone`);
    return jobView(j, collection);
  }

  close() {
    return this.ctx.close();
  }
}

/** A model or version the user named that does not exist is bad input (exit 2), as the API's 404 is. */
function unknownModel(err: unknown): never {
  if ((err instanceof NotFound && (err.resource === 'model' || err.resource === 'version')) || (err instanceof MiraApiError && err.status === 404)) {
    throw new UsageError(`--model: ${err instanceof MiraApiError ? err.problem.detail : err.message}`);
  }
  throw err;
}

class ApiVersions implements VersionOps {
  readonly runsJobsHere = false;
  constructor(private readonly client: MiraClient) {}

  private async named(name: string) {
    const { items } = await MiraClient.data(this.client.api.GET('/v1/collections'));
    const c = items.find((i) => i.name === name);
    if (!c) throw new UsageError(`no collection named ${name}`);
    return c;
  }

  async models() {
    return (await MiraClient.data(this.client.api.GET('/v1/models'))).items;
  }

  async activate(modelId: string) {
    const r = await this.client.activateModel(modelId).catch(unknownModel);
    return { model: r.model.id, jobs: r.reextractions.map((x) => jobView(x.job, x.collection.name)) };
  }

  async reextract(collection: string, modelId: string) {
    const r = await this.client.reextractCollection((await this.named(collection)).id, modelId).catch(unknownModel);
    return jobView(r.job, r.collection.name);
  }

  async rollback(collection: string) {
    return collectionView(await this.client.rollbackCollection((await this.named(collection)).id));
  }

  async deleteVersion(collection: string, modelId: string) {
    const r = await this.client.deleteCollectionVersion((await this.named(collection)).id, modelId).catch(unknownModel);
    return { collection: collectionView(r.collection), deleted: r.deleted };
  }

  async job(id: string, collection: string) {
    return jobView(await this.client.getJob(id), collection);
  }

  async close() {}
}

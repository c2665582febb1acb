import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import createClient, { type Client } from 'openapi-fetch';
import { MiraApiError } from './errors.ts';
import type { components, paths } from './schema.ts';

export type Schemas = components['schemas'];
export type Job = Schemas['Job'];
export type JobProgress = Schemas['JobProgress'];
/** GET /v1/jobs filters: state, kind (extract, reextract, finetune), collectionId, cursor, limit. */
export type JobListQuery = NonNullable<paths['/v1/jobs']['get']['parameters']['query']>;
export type Image = Schemas['Image'];
export type IngestResult = Schemas['IngestResult'];
/** A search without its query: what goes beside an uploaded query image. */
export type SearchParams = Omit<Schemas['SearchRequest'], 'text' | 'imageId' | 'image'>;
export type SearchResponse = Schemas['SearchResponse'];

export interface MiraClientOptions {
  baseUrl: string;
  /** `mira_<prefix>_<secret>`; omit for a server in no-auth mode. */
  apiKey?: string;
  /** Sent as X-Request-Id on every request (else the server makes one per request). */
  requestId?: string;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

/** What an image can be given as: bytes, a Blob/File, or a path on this machine. */
export type ImageInput = Uint8Array | ArrayBuffer | Blob | string;

const FINISHED = new Set<Job['state']>(['completed', 'failed', 'cancelled', 'lost']);

/** Bytes, Blob or file path -> a Blob with a file name, for multipart uploads. */
export async function toBlob(input: ImageInput, filename?: string): Promise<{ blob: Blob; filename: string }> {
  if (typeof input === 'string') return { blob: new Blob([new Uint8Array(await readFile(input))]), filename: filename ?? basename(input) };
  if (input instanceof Blob) return { blob: input, filename: filename ?? ((input as File).name || 'image') };
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  return { blob: new Blob([new Uint8Array(bytes)]), filename: filename ?? 'image' };
}

/**
 * The Mira client. `api` is the generated client (every operation, typed from openapi.yaml); a
 * non-2xx answer rejects with MiraApiError instead of resolving with `error`. The methods here add
 * uploads and job waiting.
 */
export class MiraClient {
  readonly api: Client<paths>;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: MiraClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    this.headers = {
      ...opts.headers,
      ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
      ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}),
    };
    this.api = createClient<paths>({ baseUrl: this.baseUrl, headers: this.headers, fetch: (r) => this.fetchImpl(r) });
    this.api.use({
      async onResponse({ response }) {
        if (!response.ok) throw await MiraApiError.from(response);
        return undefined;
      },
    });
  }

  /** The data of a call on `api` (errors have already been thrown by then). */
  static async data<T>(call: Promise<{ data?: T; response: Response }>): Promise<T> {
    const { data, response } = await call;
    if (data === undefined && response.status !== 204) throw new Error(`${response.url}: ${response.status} without a body`);
    return data as T;
  }

  /**
   * A multipart POST of one image (field `file`) plus string fields, for the upload operations.
   * Returns the parsed JSON answer; rejects with MiraApiError.
   */
  async upload<T = unknown>(path: string, image: ImageInput, fields: Record<string, string> = {}, opts: { filename?: string; query?: Record<string, string> } = {}): Promise<T> {
    const { blob, filename } = await toBlob(image, opts.filename);
    const form = new FormData();
    form.set('file', blob, filename);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
    const response = await this.fetchImpl(`${this.baseUrl}${path}${qs}`, { method: 'POST', headers: this.headers, body: form });
    if (!response.ok) throw await MiraApiError.from(response);
    return (await response.json()) as T;
  }

  /**
   * Uploads one image into a collection. Resolves once it is stored (status pending, with a jobId);
   * with `wait`, once it is extracted too (or after the server's wait cap, still pending).
   */
  uploadImage(
    collectionId: string,
    image: ImageInput,
    opts: { metadata?: Record<string, unknown>; wait?: boolean; filename?: string } = {},
  ): Promise<IngestResult> {
    const fields: Record<string, string> = opts.metadata ? { metadata: JSON.stringify(opts.metadata) } : {};
    return this.upload<IngestResult>(`/v1/collections/${encodeURIComponent(collectionId)}/images`, image, fields, {
      ...(opts.filename ? { filename: opts.filename } : {}),
      ...(opts.wait ? { query: { wait: 'true' } } : {}),
    });
  }

  /** Searches with a query image sent as multipart (no base64, no JSON body cap). */
  searchByImage(params: SearchParams, image: ImageInput): Promise<SearchResponse> {
    return this.upload<SearchResponse>('/v1/search/upload', image, { params: JSON.stringify(params) });
  }

  /** Captions an image (multipart); options as in the CaptionRequest schema. */
  caption(image: ImageInput, options: Omit<Schemas['CaptionRequest'], 'file'> = {}): Promise<Schemas['CaptionResponse']> {
    const fields = Object.fromEntries(Object.entries(options).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
    return this.upload('/v1/captions', image, fields);
  }

  /** Zero-shot classification of an image over the labels. */
  classify(image: ImageInput, labels: string[], opts: { model?: string } = {}): Promise<Schemas['ClassifyResponse']> {
    return this.upload('/v1/classify', image, { labels: JSON.stringify(labels), ...(opts.model ? { model: opts.model } : {}) });
  }

  getImage(id: string): Promise<Image> {
    return MiraClient.data(this.api.GET('/v1/images/{id}', { params: { path: { id } } }));
  }

  /** Polls the image until it is no longer pending (ready or failed). */
  async waitForImage(id: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Image> {
    return this.poll(() => this.getImage(id), (i) => i.status !== 'pending', `image ${id}`, opts);
  }

  private async poll<T>(get: () => Promise<T>, done: (v: T) => boolean, what: string, opts: { timeoutMs?: number; signal?: AbortSignal; onValue?: (v: T) => void }): Promise<T> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    let delay = 50;
    for (;;) {
      opts.signal?.throwIfAborted();
      const value = await get();
      opts.onValue?.(value);
      if (done(value)) return value;
      if (Date.now() + delay > deadline) throw new Error(`${what} did not finish within ${opts.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }

  /** Makes the model active; collections searched by another version of it get re-extraction jobs (listed). */
  activateModel(id: string): Promise<Schemas['ActivatedModel']> {
    return MiraClient.data(this.api.POST('/v1/models/{id}/activate', { params: { path: { id } } }));
  }

  /** Starts re-extracting the collection with `model` (or finds the job doing it); searches use the old version until the switch. */
  reextractCollection(id: string, model: string): Promise<Schemas['Reextraction']> {
    return MiraClient.data(this.api.POST('/v1/collections/{id}/reextract', { params: { path: { id } }, body: { model } }));
  }

  /** Searches the collection by its previous embedder version again. */
  rollbackCollection(id: string): Promise<Schemas['Collection']> {
    return MiraClient.data(this.api.POST('/v1/collections/{id}/rollback', { params: { path: { id } } }));
  }

  /** Deletes one (not the active) embedder version of the collection: its rows and index files. */
  deleteCollectionVersion(id: string, model: string): Promise<Schemas['DeletedVersion']> {
    return MiraClient.data(this.api.DELETE('/v1/collections/{id}/versions/{model}', { params: { path: { id, model } } }));
  }

  getJob(id: string): Promise<Job> {
    return MiraClient.data(this.api.GET('/v1/jobs/{id}', { params: { path: { id } } }));
  }

  /**
   * Queues a job that fine-tunes a collection's BLIP embedder (POST /v1/jobs/finetune); follow it
   * with waitForJob. Its result says whether the new version was registered, with the held-out
   * R@1 before and after.
   */
  finetune(body: Schemas['FinetuneRequest']): Promise<Job> {
    return MiraClient.data(this.api.POST('/v1/jobs/finetune', { body }));
  }

  /** Jobs, newest first (GET /v1/jobs). */
  listJobs(query: JobListQuery = {}): Promise<Schemas['JobPage']> {
    return MiraClient.data(this.api.GET('/v1/jobs', { params: { query } }));
  }

  /** Cancels a queued or running job (a running one stops at its next check, within about a second). */
  cancelJob(id: string): Promise<Job> {
    return MiraClient.data(this.api.POST('/v1/jobs/{id}/cancel', { params: { path: { id } } }));
  }

  /**
   * Queues bulk feature extraction (POST /v1/jobs/extract): a collection, or files and URLs. Follow
   * it with waitForJob, then listJobFiles and downloadJobFile.
   */
  extract(body: Schemas['ExtractRequest']): Promise<Job> {
    return MiraClient.data(this.api.POST('/v1/jobs/extract', { body }));
  }

  /** The output files of an extraction job (empty until it completes). */
  listJobFiles(id: string): Promise<Schemas['JobFiles']> {
    return MiraClient.data(this.api.GET('/v1/jobs/{id}/files', { params: { path: { id } } }));
  }

  /** One output file as a streamed response (`await res.arrayBuffer()`, or pipe `res.body` to a file). */
  async downloadJobFile(id: string, name: Schemas['JobFile']['name']): Promise<Response> {
    const response = await this.fetchImpl(`${this.baseUrl}/v1/jobs/${encodeURIComponent(id)}/files/${encodeURIComponent(name)}`, { headers: this.headers });
    if (!response.ok) throw await MiraApiError.from(response);
    return response;
  }

  /**
   * Polls the job until it finishes (completed, failed, cancelled or lost) and returns it in that
   * state; `onProgress` hears every change of progress. Polls quickly at first, then every 2 s.
   */
  async waitForJob(
    id: string,
    opts: { onProgress?: (progress: JobProgress, job: Job) => void; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Job> {
    let last = '';
    const onValue = (job: Job) => {
      const seen = JSON.stringify(job.progress);
      if (seen === last) return;
      last = seen;
      opts.onProgress?.(job.progress, job);
    };
    return this.poll(() => this.getJob(id), (job) => FINISHED.has(job.state), `job ${id}`, { ...opts, onValue });
  }
}

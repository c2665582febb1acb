import { basename } from 'node:path';
import { MiraApiError, MiraClient, type IngestResult } from '../../../sdk/src/index.ts';
import { classifyError, ingestErrorCodes } from '../../ingest/errors.ts';
import type { ExpandedSource } from '../../ingest/expand.ts';
import { ingestLimits, type IngestLimits } from '../../ingest/limits.ts';
import { readSource } from '../../ingest/sources.ts';
import { forEachBounded, Refused, type Backend, type CollectionRef, type Ingested, type SearchOutput, type SearchParams, type Settled, type SettleOptions } from '../backend.ts';

/** Problem codes that refuse one image for its input; any other error ends the run. */
const REFUSALS = new Set<string>([...ingestErrorCodes, 'body_too_large', 'unsupported_media_type']);
const isRefusal = (code: string) => REFUSALS.has(code) || code.startsWith('image_');

/** 429 and 503 are waited out (Retry-After) this many times before the run gives up. */
const RETRIES = 20;
const WAIT_CONCURRENCY = 8;

/** A running Mira server, through the SDK. */
export class ApiBackend implements Backend {
  private readonly client: MiraClient;
  private readonly limits: IngestLimits = ingestLimits();

  constructor(baseUrl: string, apiKey: string | undefined) {
    this.client = new MiraClient({ baseUrl, ...(apiKey ? { apiKey } : {}) });
  }

  async collection(name: string, opts: { create: boolean }): Promise<CollectionRef | undefined> {
    const find = async () => (await this.call(() => this.client.api.GET('/v1/collections'))).items.find((c) => c.name === name);
    const found = await find();
    if (found || !opts.create) return found;
    // As the embedded store does: the active model embeds, and a BLIP model also re-ranks and captions.
    const active = (await this.call(() => this.client.api.GET('/v1/models'))).items.find((m) => m.active);
    if (!active) throw new Error(`no collection named ${name}, and the server has no active model to create it with`);
    const blip = active.family === 'blip';
    const body = { name, embedder: active.id, reranker: blip ? active.id : null, captioner: blip ? active.id : null };
    try {
      return await this.call(() => this.client.api.POST('/v1/collections', { body }));
    } catch (err) {
      // Created at the same moment by someone else: use theirs.
      if (err instanceof MiraApiError && err.status === 409) return (await find()) ?? Promise.reject(err);
      throw err;
    }
  }

  async ingest(collection: CollectionRef, source: ExpandedSource['source'], root: string): Promise<Ingested> {
    let result: IngestResult;
    try {
      if (source.kind === 'url') {
        const body = { url: source.url, ...(source.metadata ? { metadata: source.metadata } : {}) };
        result = await this.call(() => this.client.api.POST('/v1/collections/{id}/images/url', { params: { path: { id: collection.id }, query: {} }, body }));
      } else {
        // Files are read here, under the same root rule as the embedded store, and uploaded.
        const file = await readSource(source, { ...this.limits, root });
        const opts = { filename: basename(file.source), ...(source.metadata ? { metadata: source.metadata } : {}) };
        result = await this.retrying(() => this.client.uploadImage(collection.id, file.bytes, opts));
      }
    } catch (err) {
      if (err instanceof MiraApiError) {
        if (isRefusal(err.code)) throw new Refused(err.code, err.problem.detail);
        throw err;
      }
      const local = classifyError(err);
      if (local.code === 'internal') throw err;
      throw new Refused(local.code, local.message);
    }
    return { imageId: result.image.id, created: result.created };
  }

  async settle(_collection: CollectionRef, imageIds: string[], { timeoutMs, signal, onProgress }: SettleOptions): Promise<Settled> {
    const deadline = Date.now() + timeoutMs;
    const counts: Settled = { ready: 0, failed: 0, pending: 0 };
    await forEachBounded(imageIds, WAIT_CONCURRENCY, async (id) => {
      try {
        const image = await this.retrying(() => this.client.waitForImage(id, { timeoutMs: Math.max(0, deadline - Date.now()), ...(signal ? { signal } : {}) }));
        counts[image.status]++;
        onProgress?.(counts.ready + counts.failed);
      } catch (err) {
        if (err instanceof MiraApiError && err.status === 404) return; // deleted meanwhile
        if (err instanceof MiraApiError) throw err;
        counts.pending++; // the wait ran out
      }
    });
    return counts;
  }

  async search(collection: CollectionRef, p: SearchParams): Promise<SearchOutput> {
    const body = { collectionId: collection.id, text: p.text, k: p.k, rerank: p.rerank, captions: p.captions, ...(p.filter ? { filter: p.filter } : {}) };
    const res = await this.call(() => this.client.api.POST('/v1/search', { body }));
    const results = res.results.map((r) => ({
      id: r.id,
      score: r.score,
      itcScore: r.itcScore,
      ...(r.itmScore !== undefined ? { itmScore: r.itmScore } : {}),
      ...(r.lmScore !== undefined ? { lmScore: r.lmScore } : {}),
      source: r.source,
      caption: r.caption,
      metadata: r.metadata,
    }));
    return { reranked: res.reranked, ...(res.rerankRule ? { rerankRule: res.rerankRule } : {}), model: res.model, results };
  }

  async close(): Promise<void> {}

  /** A call on the generated client: its data, with rate limits and a busy queue waited out. */
  private call<T>(fn: () => Promise<{ data?: T; response: Response }>): Promise<T> {
    return this.retrying(() => MiraClient.data(fn()));
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const busy = err instanceof MiraApiError && (err.status === 429 || err.status === 503);
        if (!busy || attempt >= RETRIES) throw err;
        await new Promise((r) => setTimeout(r, 1000 * (err.retryAfter ?? 1)));
      }
    }
  }
}

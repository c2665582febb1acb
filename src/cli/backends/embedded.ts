import { createContext, type AppContext } from '../../context.ts';
import { getCollection, type Collection } from '../../db/queries/collections.ts';
import { imagesByIds } from '../../db/queries/images.ts';
import { classifyError } from '../../ingest/errors.ts';
import type { ExpandedSource } from '../../ingest/expand.ts';
import { ingestImage } from '../../ingest/pipeline.ts';
import { InProcessJobQueue } from '../../jobs/in-process.ts';
import { search } from '../../search/search.ts';
import { Refused, type Backend, type CollectionRef, type Ingested, type SearchOutput, type SearchParams, type Settled, type SettleOptions } from '../backend.ts';
import { ensureCollection } from '../collection.ts';

/** How often a wait for extraction looks at the jobs (a few queries per 1,000 images with Redis). */
const POLL_MS = 500;

/** The store in MIRA_DATA_DIR (or Postgres with DATABASE_URL), opened in this process. */
export class EmbeddedBackend implements Backend {
  private readonly rows = new Map<string, Collection>();

  private constructor(private readonly ctx: AppContext) {}

  static async open(): Promise<EmbeddedBackend> {
    return new EmbeddedBackend(await createContext({ role: 'cli' }));
  }

  async collection(name: string, opts: { create: boolean }): Promise<CollectionRef | undefined> {
    const row = opts.create ? await ensureCollection(this.ctx, name) : await getCollection(this.ctx.db, { name });
    if (row) this.rows.set(row.id, row);
    return row;
  }

  async ingest(collection: CollectionRef, source: ExpandedSource['source'], root: string): Promise<Ingested> {
    // The CLI reads what its user can read: the root is the folder given (or the file's folder).
    const limits = { ...this.ctx.limits, root };
    try {
      const r = await ingestImage({ ...this.ctx, limits }, this.row(collection), source);
      return { imageId: r.imageId, created: r.created };
    } catch (err) {
      const c = classifyError(err);
      if (c.code === 'internal') throw err;
      throw new Refused(c.code, c.message);
    }
  }

  async settle(collection: CollectionRef, imageIds: string[], { timeoutMs, signal, onProgress }: SettleOptions): Promise<Settled> {
    const deadline = Date.now() + timeoutMs;
    const { queue } = this.ctx;
    const stopped = () => signal?.aborted || Date.now() + POLL_MS > deadline;
    if (queue instanceof InProcessJobQueue && this.ctx.mode === 'embedded') {
      // The jobs run here, on this store's own images: follow them in the queue, not the database
      // (PGlite has one connection, which they need), and count once they are done. On a shared
      // Postgres the queue also holds other collections' leftovers, so that waits on this run's rows.
      let idle = false;
      const done = queue.idle().then(() => void (idle = true));
      while (!idle && !stopped()) {
        const left = (await queue.depths()).ingest ?? 0;
        onProgress?.(Math.max(0, imageIds.length - left));
        await Promise.race([sleep(POLL_MS), done]);
      }
    }
    // Service mode (with Redis, workers elsewhere run the jobs): count this run's images until they are done.
    for (;;) {
      const counts = await this.statuses(collection, imageIds);
      onProgress?.(counts.ready + counts.failed);
      if (counts.pending === 0 || stopped()) return counts;
      await sleep(POLL_MS);
    }
  }

  private async statuses(collection: CollectionRef, ids: string[]): Promise<Settled> {
    const counts: Settled = { ready: 0, failed: 0, pending: 0 };
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = await imagesByIds(this.ctx.db, collection.id, ids.slice(i, i + 1000));
      for (const image of rows.values()) counts[image.status]++;
    }
    return counts;
  }

  async search(collection: CollectionRef, p: SearchParams): Promise<SearchOutput> {
    const result = await search(this.ctx, {
      collection: this.row(collection),
      query: { text: p.text },
      k: p.k,
      ...(p.filter ? { filter: p.filter } : {}),
      rerank: p.rerank,
      captions: p.captions,
    });
    const results = result.hits.map((h) => ({
      id: h.image.id,
      score: h.score,
      itcScore: h.itcScore,
      ...(h.itmScore !== undefined ? { itmScore: h.itmScore } : {}),
      ...(h.lmScore !== undefined ? { lmScore: h.lmScore } : {}),
      source: h.image.source,
      caption: h.image.caption,
      metadata: h.image.metadata,
    }));
    return { reranked: result.reranked, ...(result.rerankRule ? { rerankRule: result.rerankRule } : {}), model: result.model, results };
  }

  private row(ref: CollectionRef): Collection {
    const row = this.rows.get(ref.id);
    if (!row) throw new Error(`collection ${ref.name} was not opened through this backend`);
    return row;
  }

  close(): Promise<void> {
    return this.ctx.close();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

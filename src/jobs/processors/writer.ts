import type { Db } from '../../db/client.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { insertEmbeddings, lockChanges } from '../../db/queries/embeddings.ts';
import { markImagesReady } from '../../db/queries/images.ts';
import { DynamicBatcher } from '../../inference/batcher.ts';
import { liveVersions } from '../../reextract/versions.ts';

export interface Extracted {
  collectionId: string;
  /** The embedder the vector was computed with. */
  modelId: string;
  imageId: string;
  vector: Float32Array;
  /** Vectors of the collection's other versions (a re-extraction's shadow, the previous one); kept while they are live. */
  versions?: { modelId: string; vector: Float32Array }[];
  caption?: { text: string; model: string };
}

export type WriteOutcome = { label: number } | { skipped: 'deleted' | 'embedder changed' | 'collection deleted' };

/**
 * Writes finished extractions to Postgres in batches across jobs: one transaction for the vectors
 * of many images, one statement to mark them ready, one index sync. Each job still waits for its
 * own row to commit before it completes, so nothing is acknowledged before it is durable.
 */
export class ExtractionWriter {
  private readonly batcher: DynamicBatcher<Extracted, WriteOutcome>;

  constructor(
    private readonly db: Db,
    private readonly afterWrite?: (collectionId: string, modelId: string) => Promise<void>,
    opts: { maxBatch?: number; maxWaitMs?: number } = {},
  ) {
    this.batcher = new DynamicBatcher((items) => this.write(items), { maxBatch: opts.maxBatch ?? 64, maxWaitMs: opts.maxWaitMs ?? 5, maxInFlight: 1 });
  }

  submit(item: Extracted): Promise<WriteOutcome> {
    return this.batcher.submit(item);
  }

  /** Tells the index of this process (when jobs run where the index is) about rows written elsewhere, e.g. a re-extraction's. */
  async written(collectionId: string, modelId: string): Promise<void> {
    await this.afterWrite?.(collectionId, modelId);
  }

  private async write(items: Extracted[]): Promise<WriteOutcome[]> {
    const out = new Map<Extracted, WriteOutcome>();
    const groups = new Map<string, Extracted[]>();
    for (const it of items) groups.set(it.collectionId, [...(groups.get(it.collectionId) ?? []), it]);
    for (const [collectionId, group] of groups) {
      // Under the change lock a version switch also takes: a switch falls before this check or after the write.
      const written = await this.db.transaction(async (tx) => {
        await lockChanges(tx, collectionId);
        const collection = await getCollection(tx, { id: collectionId });
        if (!collection) {
          for (const it of group) out.set(it, { skipped: 'collection deleted' });
          return [];
        }
        // The collection may have switched embedders while these were computed: only the ones holding its vector are written.
        const vectorOf = (it: Extracted, model: string) => (it.modelId === model ? it.vector : it.versions?.find((v) => v.modelId === model)?.vector);
        const current = group.filter((it) => vectorOf(it, collection.embedder));
        for (const it of group) if (!current.includes(it)) out.set(it, { skipped: 'embedder changed' });
        const toItems = (list: Extracted[], model: string) => list.flatMap((it) => (vectorOf(it, model) ? [{ imageId: it.imageId, vector: vectorOf(it, model)! }] : []));
        const labels = await insertEmbeddings(tx, { collectionId, modelId: collection.embedder, items: toItems(current, collection.embedder) });
        const stored = current.filter((_, i) => labels[i]);
        const models = stored.length ? [collection.embedder] : [];
        for (const other of liveVersions(collection).slice(1)) {
          const rows = toItems(stored, other);
          if (rows.length && (await insertEmbeddings(tx, { collectionId, modelId: other, items: rows })).some(Boolean)) models.push(other);
        }
        await markImagesReady(tx, stored.map((it) => ({ id: it.imageId, ...(it.caption ? { caption: it.caption.text, captionModel: it.caption.model } : {}) })));
        current.forEach((it, i) => out.set(it, labels[i] ? { label: labels[i]!.label } : { skipped: 'deleted' }));
        return models;
      });
      for (const m of written) await this.afterWrite?.(collectionId, m);
    }
    return items.map((it) => out.get(it)!);
  }
}

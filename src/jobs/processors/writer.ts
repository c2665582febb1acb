import type { Db } from '../../db/client.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { insertEmbeddings } from '../../db/queries/embeddings.ts';
import { markImagesReady } from '../../db/queries/images.ts';
import { DynamicBatcher } from '../../inference/batcher.ts';

export interface Extracted {
  collectionId: string;
  /** The embedder the vector was computed with. */
  modelId: string;
  imageId: string;
  vector: Float32Array;
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

  private async write(items: Extracted[]): Promise<WriteOutcome[]> {
    const out = new Map<Extracted, WriteOutcome>();
    const groups = new Map<string, Extracted[]>();
    for (const it of items) {
      const key = `${it.collectionId}/${it.modelId}`;
      groups.set(key, [...(groups.get(key) ?? []), it]);
    }
    for (const group of groups.values()) {
      const { collectionId, modelId } = group[0]!;
      // The collection may have switched embedders while these were computed: re-extraction covers them.
      const collection = await getCollection(this.db, { id: collectionId });
      if (!collection || collection.embedder !== modelId) {
        for (const it of group) out.set(it, { skipped: collection ? 'embedder changed' : 'collection deleted' });
        continue;
      }
      const labels = await insertEmbeddings(this.db, { collectionId, modelId, items: group.map((it) => ({ imageId: it.imageId, vector: it.vector })) });
      const stored = group.filter((_, i) => labels[i]);
      await markImagesReady(this.db, stored.map((it) => ({ id: it.imageId, ...(it.caption ? { caption: it.caption.text, captionModel: it.caption.model } : {}) })));
      group.forEach((it, i) => out.set(it, labels[i] ? { label: labels[i]!.label } : { skipped: 'deleted' }));
      if (stored.length) await this.afterWrite?.(collectionId, modelId);
    }
    return items.map((it) => out.get(it)!);
  }
}

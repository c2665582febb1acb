import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { insertEmbedding } from '../../db/queries/embeddings.ts';
import { getImage, updateImage } from '../../db/queries/images.ts';
import type { TokenFeatureStore } from '../../features/store.ts';
import { isInferenceError } from '../../inference/errors.ts';
import type { Runtime } from '../../inference/runtime.ts';
import type { BlobStore } from '../../storage/blob.ts';
import { PermanentJobError, type Processor } from '../types.ts';

export interface IngestProcessorDeps {
  db: Db;
  blobs: BlobStore;
  features: TokenFeatureStore;
  /** The open runtime of a registered model. */
  runtime(modelId: string): Promise<Runtime>;
  /** Caption at ingest when the collection has a captioner. */
  captionOnIngest: boolean;
  /** Called after a write the indexes must see (embedded mode syncs its index at once). */
  afterWrite?(collectionId: string, modelId: string): Promise<void>;
}

const payload = z.object({ collectionId: z.string().uuid(), imageId: z.string().uuid() });

/**
 * Extracts one image: the embedder's feature into Postgres (the HNSW label comes with it), the
 * reranker's token sequence into the feature store, and a caption when asked. Idempotent: a ready
 * image is left alone, and a second run reuses the label of the first.
 */
export const ingestProcessor: Processor<IngestProcessorDeps, z.infer<typeof payload>> = {
  kind: 'ingest',
  payload,
  // Enough jobs in flight for the runtime to batch their images together.
  queue: { attempts: 5, backoffMs: 1000, concurrency: 16, keepCompleted: 1000, keepFailed: 5000 },
  async process(deps, p, run) {
    const image = await getImage(deps.db, p.imageId, { collectionId: p.collectionId });
    if (!image || image.status === 'ready') return { skipped: image ? 'ready' : 'deleted' };
    const collection = await getCollection(deps.db, { id: p.collectionId });
    if (!collection) return { skipped: 'collection deleted' };
    const bytes = await deps.blobs.get(image.sha256, 'original');
    if (!bytes) return fail(deps, image.id, 'blob_missing', `the original of image ${image.id} is not in the blob store`);

    try {
      const embedder = await deps.runtime(collection.embedder);
      const [emb] = await embedder.embedImages([bytes]);
      if (collection.reranker) {
        const tokens = collection.reranker === collection.embedder ? emb!.tokens : (await (await deps.runtime(collection.reranker)).embedImages([bytes]))[0]!.tokens;
        if (tokens) await deps.features.put(collection.reranker, image.id, tokens);
      }
      let caption: { caption: string; captionModel: string } | undefined;
      if (collection.captioner && deps.captionOnIngest) {
        const c = await (await deps.runtime(collection.captioner)).caption(bytes);
        caption = { caption: c.text, captionModel: collection.captioner };
      }
      // The collection may have switched embedders while we computed: the re-extraction covers it.
      const now = await getCollection(deps.db, { id: p.collectionId });
      if (!now || now.embedder !== collection.embedder) return { skipped: 'embedder changed' };
      const stored = await insertEmbedding(deps.db, { collectionId: collection.id, modelId: collection.embedder, imageId: image.id, vector: emb!.feat });
      if (!stored) return { skipped: 'deleted' };
      await updateImage(deps.db, image.id, { status: 'ready', error: null, ...caption });
      await deps.afterWrite?.(collection.id, collection.embedder);
      run.log.info({ jobId: run.id, imageId: image.id, label: stored.label }, 'image extracted');
      return { label: stored.label };
    } catch (err) {
      // Undecodable bytes cannot get better: record why and do not retry.
      if (isInferenceError(err) && err.code.startsWith('image_')) return fail(deps, image.id, err.code, err.message);
      throw err;
    }
  },
};

async function fail(deps: IngestProcessorDeps, imageId: string, code: string, message: string): Promise<never> {
  await updateImage(deps.db, imageId, { status: 'failed', error: `${code}: ${message}` });
  throw new PermanentJobError(message, code);
}

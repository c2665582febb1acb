import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { getCollection } from '../../db/queries/collections.ts';
import { getImage, updateImage } from '../../db/queries/images.ts';
import type { TokenFeatureStore } from '../../features/store.ts';
import { isInferenceError } from '../../inference/errors.ts';
import type { Runtime } from '../../inference/runtime.ts';
import { BundleUnavailable } from '../../models/registry.ts';
import { liveVersions } from '../../reextract/versions.ts';
import type { BlobStore } from '../../storage/blob.ts';
import { PermanentJobError, type Processor } from '../types.ts';
import type { ExtractionWriter } from './writer.ts';

export interface IngestProcessorDeps {
  db: Db;
  blobs: BlobStore;
  features: TokenFeatureStore;
  /** The open runtime of a registered model. */
  runtime(modelId: string): Promise<Runtime>;
  /** Caption at ingest when the collection has a captioner. */
  captionOnIngest: boolean;
  /** Batches the Postgres writes of concurrent jobs. */
  writer: ExtractionWriter;
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
      // Every live version: the active one, and while they exist a re-extraction's shadow and the
      // rollback target. Another version whose files are gone (the one before an upgrade) is left
      // out: it then lacks this image, and a rollback to it is refused as incomplete.
      const embedded = await Promise.all(
        liveVersions(collection).map(async (modelId, i) => {
          const runtime = await deps.runtime(modelId).catch((err: unknown) => {
            if (i > 0 && err instanceof BundleUnavailable) return undefined;
            throw err;
          });
          return runtime && { modelId, emb: (await runtime.embedImages([bytes]))[0]! };
        }),
      );
      const versions = embedded.filter((v) => v !== undefined);
      const emb = versions[0]!.emb;
      if (collection.reranker) {
        const tokens = versions.find((v) => v.modelId === collection.reranker)?.emb.tokens ?? (await (await deps.runtime(collection.reranker)).embedImages([bytes]))[0]!.tokens;
        if (tokens) await deps.features.put(collection.reranker, image.id, tokens);
      }
      let caption: { text: string; model: string } | undefined;
      if (collection.captioner && deps.captionOnIngest) {
        const c = await (await deps.runtime(collection.captioner)).caption(bytes);
        caption = { text: c.text, model: collection.captioner };
      }
      const others = versions.slice(1).map((v) => ({ modelId: v.modelId, vector: v.emb.feat }));
      const outcome = await deps.writer.submit({ collectionId: collection.id, modelId: collection.embedder, imageId: image.id, vector: emb.feat, versions: others, ...(caption ? { caption } : {}) });
      if ('skipped' in outcome) return outcome;
      run.log.info({ jobId: run.id, imageId: image.id, label: outcome.label }, 'image extracted');
      return outcome;
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

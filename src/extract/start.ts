import type { AppContext } from '../context.ts';
import { NotFound } from '../db/errors.ts';
import type { Collection } from '../db/queries/collections.ts';
import { getActiveModel, getModel } from '../db/queries/models.ts';
import type { Job } from '../db/queries/jobs.ts';
import { submitJob } from '../jobs/submit.ts';
import type { ExtractPayload, ExtractSource } from './payload.ts';

export interface ExtractRequest {
  /** The collection extracted, or the one whose embedder embeds the files (and whose keys see the job). */
  collection?: Collection;
  /** Files instead of the collection's images. */
  files?: Exclude<ExtractSource, { kind: 'collection' }>;
  /** Without a collection: this model, else the active one. */
  modelId?: string;
  captions?: boolean;
  chunkSize?: number;
}

/** Resolves the embedder and queues an extraction job (payload checked by submitJob). */
export async function startExtraction(ctx: AppContext, req: ExtractRequest): Promise<Job> {
  let modelId: string;
  if (req.collection) modelId = req.collection.embedder;
  else if (req.modelId) {
    if (!(await getModel(ctx.db, req.modelId))) throw new NotFound('model', req.modelId);
    modelId = req.modelId;
  } else modelId = (await getActiveModel(ctx.db))?.id ?? ctx.defaultModel.id;
  const source: ExtractSource | undefined = req.files ?? (req.collection ? { kind: 'collection', collectionId: req.collection.id } : undefined);
  const payload: Partial<ExtractPayload> & { source?: ExtractSource } = {
    source,
    modelId,
    ...(req.captions === undefined ? {} : { captions: req.captions }),
    ...(req.chunkSize === undefined ? {} : { chunkSize: req.chunkSize }),
  };
  return submitJob(ctx, 'extract', payload, { collectionId: req.collection?.id ?? null });
}

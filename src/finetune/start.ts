import { z } from 'zod';
import type { AppContext } from '../context.ts';
import type { Collection } from '../db/queries/collections.ts';
import type { Job } from '../db/queries/jobs.ts';
import { getModel } from '../db/queries/models.ts';
import { submitJob } from '../jobs/submit.ts';
import { MIN_IMAGES, notFinetunable } from './base.ts';
import { collectPairs, resolvePairImages, UnknownPairImage } from './pairs.ts';
import { captionText, finetuneOptions, MAX_PAIRS, type FinetunePayload } from './payload.ts';

/** What a caller asks for: the payload, with uploaded pairs naming images by id or sha256. */
export const finetuneRequestSource = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('captions'), include: z.enum(['all', 'edited']).default('all') }),
  z.strictObject({
    kind: z.literal('pairs'),
    pairs: z.array(z.strictObject({ image: z.string().min(1).max(100), caption: captionText })).min(1).max(MAX_PAIRS),
  }),
]);
export const finetuneRequest = finetuneOptions.strict().extend({ source: finetuneRequestSource.default({ kind: 'captions', include: 'all' }) });
export type FinetuneRequest = z.infer<typeof finetuneRequest>;

/** A request that cannot start: `pointer` is the JSON pointer of the field at fault, when one is. */
export class FinetuneRefused extends Error {
  constructor(
    readonly code: 'model_unsuitable' | 'invalid_request',
    message: string,
    readonly pointer?: string,
  ) {
    super(message);
  }
}

/**
 * Checks the request against the collection (a fine-tunable embedder, images that exist, enough
 * captioned images) and queues the job. Refused requests change nothing.
 */
export async function startFinetune(ctx: AppContext, collection: Collection, req: FinetuneRequest): Promise<Job> {
  const base = (await getModel(ctx.db, collection.embedder))!;
  const unsuitable = notFinetunable(base);
  if (unsuitable) throw new FinetuneRefused('model_unsuitable', `collection ${collection.name} is searched by ${unsuitable}`);
  let source: FinetunePayload['source'];
  if (req.source.kind === 'pairs') {
    const pairs = await resolvePairImages(ctx.db, collection.id, req.source.pairs).catch((err: unknown) => {
      if (err instanceof UnknownPairImage) throw new FinetuneRefused('invalid_request', err.message, `/source/pairs/${err.index}/image`);
      throw err;
    });
    source = { kind: 'pairs', pairs };
  } else {
    source = req.source;
  }
  const { pairs, skipped } = await collectPairs(ctx.db, collection.id, source);
  const images = new Set(pairs.map((p) => p.imageId)).size;
  if (images < MIN_IMAGES) {
    const why = source.kind === 'captions' ? `captioned ready images (set metadata.caption with PATCH /v1/images/{id})` : 'ready images among the pairs';
    throw new FinetuneRefused('invalid_request', `collection ${collection.name} has ${images} ${why}, ${skipped} left out; fine-tuning needs at least ${MIN_IMAGES}`, '/source');
  }
  const { source: _, ...options } = req;
  return submitJob(ctx, 'finetune', { ...options, collectionId: collection.id, source }, { collectionId: collection.id });
}

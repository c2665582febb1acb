import type { AppContext } from '../context.ts';
import { createCollection, getCollection, type Collection } from '../db/queries/collections.ts';

/**
 * The named collection, created with the default model when it does not exist: the default model
 * embeds, and a BLIP default also re-ranks and captions.
 */
export async function ensureCollection(ctx: AppContext, name: string): Promise<Collection> {
  const existing = await getCollection(ctx.db, { name });
  if (existing) return existing;
  const m = ctx.defaultModel;
  const blip = m.family === 'blip';
  return createCollection(ctx.db, { name, embedder: m.id, reranker: blip ? m.id : null, captioner: blip ? m.id : null }).catch(async (err) => {
    // Created concurrently by another process: use theirs.
    const again = await getCollection(ctx.db, { name });
    if (again) return again;
    throw err;
  });
}

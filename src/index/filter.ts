import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { embeddings, images } from '../db/schema/index.ts';

export type MetadataFilter = Record<string, unknown>;

/**
 * Labels of the live embeddings (of one model) whose image metadata contains `filter` (jsonb
 * `@>`). Pass the set to `search(..., {allowedLabels})`. A label Postgres knows but this replica
 * has not applied yet is simply not found.
 *
 * The shape is chosen to stay fast without planner statistics (PGlite has no autovacuum, so
 * none until someone runs ANALYZE): the matching image ids are collected once, then each is
 * looked up in the partial unique index embeddings_image_model. A plain join estimated at one
 * row each side became a nested loop that scanned the collection's images once per embedding.
 */
export async function allowedLabels(db: Db, collectionId: string, modelId: string, filter: MetadataFilter): Promise<Set<number>> {
  const matching = db
    .select({ id: images.id })
    .from(images)
    .where(and(eq(images.collectionId, collectionId), isNull(images.deletedAt), sql`${images.metadata} @> ${JSON.stringify(filter)}::jsonb`));
  // The image ids are the collection's, so the embeddings need no collection condition, which
  // would tempt the planner to the (collection, model, label) index instead.
  const rows = await db
    .select({ label: embeddings.label })
    .from(embeddings)
    .where(and(eq(embeddings.modelId, modelId), isNull(embeddings.deletedSeq), sql`${embeddings.imageId} = any(array${matching})`));
  return new Set(rows.map((r) => r.label));
}

import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { embeddings, images } from '../db/schema/index.ts';

export type MetadataFilter = Record<string, unknown>;

/**
 * Labels of the live embeddings (of one model) whose image metadata contains `filter` (jsonb
 * `@>`, served by the images_metadata GIN index). Pass the set to `search(..., {allowedLabels})`.
 * A label Postgres knows but this replica has not applied yet is simply not found.
 */
export async function allowedLabels(db: Db, collectionId: string, modelId: string, filter: MetadataFilter): Promise<Set<number>> {
  const rows = await db
    .select({ label: embeddings.label })
    .from(embeddings)
    .innerJoin(images, eq(images.id, embeddings.imageId))
    .where(
      and(
        eq(embeddings.collectionId, collectionId),
        eq(embeddings.modelId, modelId),
        isNull(embeddings.deletedSeq),
        eq(images.collectionId, collectionId),
        isNull(images.deletedAt),
        sql`${images.metadata} @> ${JSON.stringify(filter)}::jsonb`,
      ),
    );
  return new Set(rows.map((r) => r.label));
}

import { sql } from 'drizzle-orm';
import { bigint, index, pgSequence, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { collections } from './collections.ts';
import { images } from './images.ts';
import { models } from './models.ts';
import { vector } from './types.ts';

/**
 * One sequence numbers every change the HNSW indexes must apply: a new embedding takes its label
 * from it, a delete takes a deleted_seq from it. An index file records the highest number it has
 * applied; startup and replicas replay the rows above it.
 */
export const changeSeq = pgSequence('index_change_seq', { startWith: 1 });

export const embeddings = pgTable(
  'embeddings',
  {
    /** The HNSW label. */
    label: bigint('label', { mode: 'number' }).primaryKey().default(sql`nextval('index_change_seq')`),
    imageId: uuid('image_id').notNull().references(() => images.id, { onDelete: 'cascade' }),
    collectionId: uuid('collection_id').notNull().references(() => collections.id, { onDelete: 'cascade' }),
    modelId: text('model_id').notNull().references(() => models.id),
    vector: vector('vector').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    deletedSeq: bigint('deleted_seq', { mode: 'number' }),
  },
  (t) => [
    uniqueIndex('embeddings_image_model').on(t.imageId, t.modelId).where(sql`${t.deletedSeq} is null`),
    index('embeddings_collection_model_label').on(t.collectionId, t.modelId, t.label),
    index('embeddings_collection_model_deleted').on(t.collectionId, t.modelId, t.deletedSeq).where(sql`${t.deletedSeq} is not null`),
  ],
);

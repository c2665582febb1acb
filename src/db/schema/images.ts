import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { collections } from './collections.ts';

export const imageStatus = ['pending', 'ready', 'failed'] as const;

export const images = pgTable(
  'images',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    collectionId: uuid('collection_id').notNull().references(() => collections.id, { onDelete: 'cascade' }),
    sha256: text('sha256').notNull(),
    /** Where it came from: `upload:<filename>`, a URL, or a path under the ingest root. */
    source: text('source').notNull(),
    mime: text('mime').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    bytes: integer('bytes').notNull(),
    metadata: jsonb('metadata').notNull().default({}),
    caption: text('caption'),
    captionModel: text('caption_model'),
    status: text('status', { enum: imageStatus }).notNull().default('pending'),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    /** Soft delete: the index learns of it through embeddings.deleted_seq. */
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    // The same bytes in a collection are one image (while it is not deleted).
    uniqueIndex('images_collection_sha256').on(t.collectionId, t.sha256).where(sql`${t.deletedAt} is null`),
    index('images_collection_created').on(t.collectionId, t.createdAt, t.id),
    index('images_metadata').using('gin', t.metadata),
    // Whether any collection still holds a blob (src/storage/purge.ts).
    index('images_sha256').on(t.sha256),
  ],
);

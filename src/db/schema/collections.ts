import { bigint, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { models } from './models.ts';

export const collections = pgTable('collections', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  /** The model whose features the collection is searched by (ITC or CLIP). */
  embedder: text('embedder').notNull().references(() => models.id),
  /** Optional BLIP model for ITM re-ranking and captions. */
  reranker: text('reranker').references(() => models.id),
  captioner: text('captioner').references(() => models.id),
  /** The version a re-extraction is filling (a shadow: rows and index, not searched); ingest writes it too. */
  pendingEmbedder: text('pending_embedder').references(() => models.id),
  /** The job filling `pendingEmbedder`. */
  pendingJobId: text('pending_job_id'),
  /** The version searched before the last switch: kept complete by ingest, the target of a rollback. */
  previousEmbedder: text('previous_embedder').references(() => models.id),
  /**
   * The newest change number of `embedder`'s rows when the last switch (or rollback) committed. A
   * process whose index of `embedder` has read less than this catches up before it answers, so
   * the first searches after a switch never see a partly followed index.
   */
  switchedAtSeq: bigint('switched_at_seq', { mode: 'number' }),
  dim: integer('dim').notNull(),
  hnswM: integer('hnsw_m').notNull().default(16),
  hnswEfConstruction: integer('hnsw_ef_construction').notNull().default(200),
  hnswEfSearch: integer('hnsw_ef_search').notNull().default(64),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

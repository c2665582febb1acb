import { index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { collections } from './collections.ts';

/** Kinds with a row here. Ingest jobs have none: one per image, their state is the image row's. */
export const listedJobKinds = ['extract', 'reextract', 'finetune'] as const;
export const jobKinds = ['ingest', ...listedJobKinds] as const;
export const jobStates = ['queued', 'running', 'completed', 'failed', 'cancelled', 'lost'] as const;

/** Durable job history beside BullMQ's: survives Redis restarts and trimming. */
export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: jobKinds }).notNull(),
    state: text('state', { enum: jobStates }).notNull().default('queued'),
    collectionId: uuid('collection_id').references(() => collections.id, { onDelete: 'set null' }),
    payload: jsonb('payload').notNull(),
    /** `{done, total}` plus kind-specific figures. */
    progress: jsonb('progress').notNull().default({ done: 0, total: 0 }),
    counts: jsonb('counts').notNull().default({}),
    error: text('error'),
    attempts: integer('attempts').notNull().default(0),
    result: jsonb('result'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('jobs_state_created').on(t.state, t.createdAt), index('jobs_collection').on(t.collectionId, t.createdAt)],
);

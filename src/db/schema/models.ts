import { boolean, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Registered model bundles. A model is `name@version`; a new version is a new embedder. */
export const models = pgTable('models', {
  id: text('id').primaryKey(), // `${name}@${version}`
  name: text('name').notNull(),
  version: text('version').notNull(),
  family: text('family', { enum: ['blip', 'clip'] }).notNull(),
  /** Bundle folder on the servers' disk. */
  path: text('path').notNull(),
  /** sha256 over manifest.json and the graph files: a changed bundle under an old version is refused. */
  checksum: text('checksum').notNull(),
  embedDim: integer('embed_dim').notNull(),
  /** Whether new collections pick this model by default. */
  active: boolean('active').notNull().default(false),
  manifest: jsonb('manifest').notNull(),
  registeredAt: timestamp('registered_at', { withTimezone: true }).notNull().defaultNow(),
});

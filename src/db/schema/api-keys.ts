import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const apiKeyScopes = ['read', 'write', 'admin'] as const;

/**
 * API keys. The token is `mira_<prefix>_<secret>`: `prefix` finds the row, `hash` is sha256 of the
 * secret (a high-entropy random string, so a fast hash is right); the secret itself is never stored.
 */
export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  prefix: text('prefix').notNull().unique(),
  hash: text('hash').notNull(),
  scopes: text('scopes', { enum: apiKeyScopes }).array().notNull(),
  /** The collections the key may use; null means all of them. */
  collections: uuid('collections').array(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

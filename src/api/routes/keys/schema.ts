import { z } from '@hono/zod-openapi';
import { apiKeyScopes, type ApiKey as Row } from '../../keys.ts';
import { iso, isoOrNull, Timestamp, Uuid } from '../../schemas.ts';

const Scope = z.enum(apiKeyScopes).openapi({ description: 'read: search and get; write: ingest and delete (and read); admin: models, keys, collections (and write)' });

export const CreateKey = z
  .strictObject({
    name: z.string().min(1).max(200).openapi({ example: 'search frontend' }),
    scopes: z.array(Scope).min(1).max(3),
    collections: z
      .array(Uuid)
      .min(1)
      .max(1000)
      .nullable()
      .optional()
      .openapi({ description: 'Limit the key to these collections; omitted or null: all' }),
  })
  .openapi('CreateKey');

export const ApiKey = z
  .object({
    id: Uuid,
    name: z.string(),
    prefix: z.string().openapi({ description: 'The public part of the key, to tell keys apart' }),
    scopes: z.array(Scope),
    collections: z.array(Uuid).nullable(),
    createdAt: Timestamp,
    lastUsedAt: Timestamp.nullable(),
    revokedAt: Timestamp.nullable(),
  })
  .openapi('ApiKey');
export type ApiKey = z.infer<typeof ApiKey>;

export const CreatedKey = z
  .object({
    key: z.string().openapi({ description: 'The secret key. It is shown this once and cannot be recovered.', example: 'mira_1a2b3c4d5e6f_…' }),
    apiKey: ApiKey,
  })
  .openapi('CreatedKey');

export const KeyList = z.object({ items: z.array(ApiKey) }).openapi('KeyList');

export function toApiKey(k: Row): ApiKey {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    collections: k.collections,
    createdAt: iso(k.createdAt),
    lastUsedAt: isoOrNull(k.lastUsedAt),
    revokedAt: isoOrNull(k.revokedAt),
  };
}

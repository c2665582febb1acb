import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, desc, eq, getTableColumns, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { isUuid } from '../db/queries/page.ts';
import { apiKeys, apiKeyScopes, collections } from '../db/schema/index.ts';

export type Scope = (typeof apiKeyScopes)[number];
export { apiKeyScopes };

const { hash: _hash, ...publicColumns } = getTableColumns(apiKeys);
/** A key as listed: never its hash. */
export type ApiKey = Omit<typeof apiKeys.$inferSelect, 'hash'>;

/** `mira_<12 hex>_<43 base64url>`: the prefix finds the row, the 256-bit secret proves the caller. */
const TOKEN = /^mira_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class UnknownCollections extends Error {
  constructor(readonly ids: string[]) {
    super(`no collection ${ids.join(', ')}`);
  }
}

/** Creates a key; the returned `key` is the only time the secret exists outside the caller. */
export async function createKey(
  db: Db,
  p: { name: string; scopes: Scope[]; collections?: string[] | null },
): Promise<{ id: string; key: string; apiKey: ApiKey }> {
  const scopes = [...new Set(p.scopes)];
  if (scopes.length === 0) throw new RangeError('a key needs at least one scope');
  const wanted = p.collections ? [...new Set(p.collections)] : null;
  if (wanted) {
    const valid = wanted.filter(isUuid);
    const found = valid.length ? await db.select({ id: collections.id }).from(collections).where(inArray(collections.id, valid)) : [];
    const missing = wanted.filter((id) => !found.some((f) => f.id === id));
    if (missing.length) throw new UnknownCollections(missing);
  }
  const prefix = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const [row] = await db
    .insert(apiKeys)
    .values({ name: p.name, prefix, hash: sha256(secret), scopes, collections: wanted })
    .returning(publicColumns);
  return { id: row!.id, key: `mira_${prefix}_${secret}`, apiKey: row! };
}

/** The live key the token belongs to, or undefined for a malformed, unknown, wrong or revoked one. */
export async function verifyKey(db: Db, token: string): Promise<ApiKey | undefined> {
  const m = TOKEN.exec(token);
  if (!m) return undefined;
  const [, prefix, secret] = m;
  const [row] = await db.select().from(apiKeys).where(eq(apiKeys.prefix, prefix!));
  if (!row || row.revokedAt) return undefined;
  const expected = Buffer.from(row.hash, 'hex');
  const actual = createHash('sha256').update(secret!).digest();
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  const { hash: _, ...key } = row;
  return key;
}

export function listKeys(db: Db, opts: { includeRevoked?: boolean } = {}): Promise<ApiKey[]> {
  return db
    .select(publicColumns)
    .from(apiKeys)
    .where(opts.includeRevoked ? undefined : isNull(apiKeys.revokedAt))
    .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id));
}

export async function getKey(db: Db, id: string): Promise<ApiKey | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await db.select(publicColumns).from(apiKeys).where(eq(apiKeys.id, id));
  return row;
}

/** Revokes the key; revoking twice keeps the first time. False when there is no such key. */
export async function revokeKey(db: Db, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
    .where(eq(apiKeys.id, id))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

/** Records use, at most once per `everyMs` per key (one conditional update, no read). */
export async function touchKey(db: Db, id: string, everyMs = 60_000): Promise<void> {
  const before = new Date(Date.now() - everyMs);
  await db
    .update(apiKeys)
    .set({ lastUsedAt: sql`now()` })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, before))));
}

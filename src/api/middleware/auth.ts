import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Db } from '../../db/client.ts';
import { ApiError } from '../errors.ts';
import { apiKeyScopes, touchKey, verifyKey, type ApiKey, type Scope } from '../keys.ts';
import type { ApiEnv } from '../types.ts';

/** Who is calling: an API key, or `anonymous` in no-auth mode. */
export interface Principal {
  keyId: string;
  scopes: ReadonlySet<Scope>;
  /** The collections the key may use; null for all. */
  collections: ReadonlySet<string> | null;
}

/** A scope implies the ones below it: admin can write, write can read. */
const implied: Record<Scope, Scope[]> = { read: ['read'], write: ['write', 'read'], admin: ['admin', 'write', 'read'] };

export const hasScope = (p: Principal, s: Scope): boolean => [...p.scopes].some((own) => implied[own].includes(s));
export const canAccess = (p: Principal, collectionId: string): boolean => p.collections === null || p.collections.has(collectionId);

const anonymous: Principal = { keyId: 'anonymous', scopes: new Set(apiKeyScopes), collections: null };

const unauthorized = (detail: string) => new ApiError('unauthorized', detail, { headers: { 'www-authenticate': 'Bearer realm="mira"' } });

/**
 * Verified keys for a few seconds, so a request does not always cost a database read. Per
 * database handle; a revocation through this process forgets the key at once, one through another
 * replica takes effect within CACHE_MS.
 */
const CACHE_MS = 5_000;
const CACHE_MAX = 10_000;
const caches = new WeakMap<Db, Map<string, { key: ApiKey; until: number }>>();

export function forgetKey(db: Db, keyId: string): void {
  const cache = caches.get(db);
  if (!cache) return;
  for (const [token, entry] of cache) if (entry.key.id === keyId) cache.delete(token);
}

async function lookup(db: Db, token: string): Promise<ApiKey | undefined> {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  const id = createHash('sha256').update(token).digest('hex');
  const hit = cache.get(id);
  if (hit && hit.until > Date.now()) return hit.key;
  const key = await verifyKey(db, token);
  if (cache.size >= CACHE_MAX) cache.clear();
  if (key) cache.set(id, { key, until: Date.now() + CACHE_MS });
  else cache.delete(id);
  return key;
}

/** last_used_at is written at most this often per key and process. */
const TOUCH_MS = 60_000;
const touched = new WeakMap<Db, Map<string, number>>();

function dueForTouch(db: Db, keyId: string): boolean {
  let last = touched.get(db);
  if (!last) touched.set(db, (last = new Map()));
  const now = Date.now();
  if ((last.get(keyId) ?? 0) > now - TOUCH_MS) return false;
  if (last.size >= CACHE_MAX) last.clear();
  last.set(keyId, now);
  return true;
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/**
 * Bearer API keys. With auth off (embedded and loopback only, checked at startup), every request
 * is `anonymous` with all scopes, but a browser page on another site must not drive the server:
 * requests from a foreign Origin or through a non-loopback Host (DNS rebinding) are refused.
 */
export function authenticate(opts: { authOff: boolean; corsOrigins: string[] }): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const { db } = c.var.ctx;
    if (opts.authOff) {
      // The web UI served here posts with its own Origin; the Host check below keeps that to loopback.
      const origin = c.req.header('origin');
      if (origin && origin !== new URL(c.req.url).origin && !opts.corsOrigins.includes(origin)) throw new ApiError('forbidden', 'Cross-origin requests are refused while auth is off.');
      if (!LOOPBACK_HOST.test(c.req.header('host') ?? '')) throw new ApiError('forbidden', 'With auth off, the server answers only loopback host names.');
      c.set('principal', anonymous);
      return next();
    }
    const header = c.req.header('authorization');
    if (!header) throw unauthorized('Send an API key: Authorization: Bearer mira_...');
    const [scheme, token] = header.split(' ', 2);
    if (scheme?.toLowerCase() !== 'bearer' || !token) throw unauthorized('The Authorization header must be "Bearer <API key>".');
    const key = await lookup(db, token.trim());
    if (!key) throw unauthorized('The API key is malformed, unknown or revoked.');
    c.set('principal', { keyId: key.id, scopes: new Set(key.scopes), collections: key.collections ? new Set(key.collections) : null });
    if (dueForTouch(db, key.id)) touchKey(db, key.id, TOUCH_MS).catch((err: unknown) => c.var.log.warn({ err }, 'could not record API key use'));
    return next();
  };
}

/**
 * Route guard: the key must hold `scope`; with `allCollections`, it must also be unlimited (keys,
 * models and collection creation act beyond any one collection).
 */
export function requireScope(scope: Scope, opts: { allCollections?: boolean } = {}): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const p = c.var.principal;
    if (!hasScope(p, scope)) throw new ApiError('forbidden', `This API key lacks the ${scope} scope.`, { extensions: { requiredScope: scope } });
    if (opts.allCollections && p.collections !== null) throw new ApiError('forbidden', 'A key limited to some collections cannot do this.');
    return next();
  };
}

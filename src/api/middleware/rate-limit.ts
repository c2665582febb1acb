import type { MiddlewareHandler } from 'hono';
import { Redis } from 'ioredis';
import { ApiError } from '../errors.ts';
import type { ApiEnv } from '../types.ts';

export interface Hit {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/** Fixed windows per key: the window opens at its first request and lasts `windowMs`. */
export interface RateLimiter {
  hit(key: string, windowMs: number): Promise<Hit>;
  close(): Promise<void>;
}

/** Embedded mode: one process, so a map is the whole truth. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  async hit(key: string, windowMs: number): Promise<Hit> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      if (this.windows.size > 10_000) for (const [k, old] of this.windows) if (old.resetAt <= now) this.windows.delete(k);
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return { count: w.count, resetMs: w.resetAt - now };
  }

  async close(): Promise<void> {}
}

/** INCR, set the expiry on the first hit (or when one is missing), read the time left: one atomic step. */
const HIT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;

/** Service mode: counters in Redis, so the limit holds across API replicas. */
export class RedisRateLimiter implements RateLimiter {
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  static connect(url: string, prefix = 'mira'): RedisRateLimiter {
    // Fail fast while Redis is down: the middleware lets requests through rather than hang.
    const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
    redis.on('error', () => {});
    redis.defineCommand('miraRateHit', { numberOfKeys: 1, lua: HIT });
    return new RedisRateLimiter(redis, prefix);
  }

  async hit(key: string, windowMs: number): Promise<Hit> {
    const [count, ttl] = (await (this.redis as unknown as { miraRateHit(k: string, ms: number): Promise<[number, number]> }).miraRateHit(
      `${this.prefix}:ratelimit:${key}`,
      windowMs,
    ))!;
    return { count, resetMs: ttl };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

const WINDOW_MS = 60_000;

/**
 * Per key (the principal), `limit` requests a minute; over it, 429 problem+json with Retry-After.
 * Answers carry RateLimit-Limit/-Remaining/-Reset. If the store fails the request goes through:
 * a Redis outage should not take search down with it.
 */
export function rateLimit(limiter: RateLimiter, limit: number): MiddlewareHandler<ApiEnv> {
  let warnedAt = 0;
  return async (c, next) => {
    let hit: Hit;
    try {
      hit = await limiter.hit(c.var.principal.keyId, WINDOW_MS);
    } catch (err) {
      if (Date.now() - warnedAt > 60_000) {
        warnedAt = Date.now();
        c.var.log.warn({ err }, 'rate limiter unavailable; requests are not limited');
      }
      return next();
    }
    const reset = Math.max(1, Math.ceil(hit.resetMs / 1000));
    const headers = { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(Math.max(0, limit - hit.count)), 'ratelimit-reset': String(reset) };
    if (hit.count > limit) {
      throw new ApiError('rate_limited', `More than ${limit} requests a minute with this key; retry in ${reset} s.`, {
        headers: { ...headers, 'retry-after': String(reset) },
      });
    }
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    await next();
  };
}

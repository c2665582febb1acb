import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { ApiEnv } from '../types.ts';

export const parseOrigins = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** CORS only for the configured origins; with none configured there is no middleware at all. */
export function corsFor(origins: string[]): MiddlewareHandler<ApiEnv> | undefined {
  if (origins.length === 0) return undefined;
  return cors({
    origin: origins,
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: ['X-Request-Id', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
    maxAge: 600,
  });
}

import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Context } from 'hono';
import type { Metrics } from '../../metrics.ts';
import type { ApiEnv } from '../types.ts';

/** The route pattern that answered (`/v1/jobs/:id`), never the raw path, so label values stay few. */
function routeOf(c: Context<ApiEnv>): string {
  const handler = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1);
  return handler?.path ?? 'unmatched';
}

/** One log line and one histogram sample per request. */
export function observe(metrics: Metrics): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    const seconds = (performance.now() - start) / 1000;
    const status = c.res.status;
    const route = routeOf(c);
    metrics.httpRequestDuration.observe({ method: c.req.method, route, status: String(status) }, seconds);
    const principal = c.get('principal');
    const line = { method: c.req.method, route, path: c.req.path, status, ms: Math.round(seconds * 10_000) / 10, keyId: principal?.keyId };
    if (status >= 500) c.var.log.warn(line, 'request');
    else c.var.log.info(line, 'request');
  };
}

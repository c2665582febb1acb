import type { Context, Hono } from 'hono';
import { problemResponse } from '../errors.ts';
import type { ApiEnv } from '../types.ts';

/** One path segment of a hono route as a regexp: `:id`, `:file{[a-z]+\\.js}` (its constraint kept), `*`, or literal text. */
function segmentPattern(seg: string): string {
  const param = /^:[A-Za-z0-9_]+(?:\{(.+)\})?(\?)?$/.exec(seg);
  if (param) return `${param[1] ? `(?:${param[1]})` : '[^/]+'}${param[2] ? '?' : ''}`;
  return seg.split('*').map((lit) => lit.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
}

/** The routes' patterns as regexps, built once, for telling 404 from 405. */
function patterns(app: Hono<ApiEnv>): { re: RegExp; method: string }[] {
  return app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({ method: r.method, re: new RegExp(`^${r.path.split(/\/(?![^{]*\})/).map(segmentPattern).join('/')}/?$`) }));
}

/**
 * Unknown path: 404 problem. Known path, other method: 405 with Allow (OPTIONS gets 204 and
 * Allow, since without CORS nothing else answers it).
 */
export function notFound(app: Hono<ApiEnv>) {
  let table: ReturnType<typeof patterns> | undefined;
  return (c: Context<ApiEnv>) => {
    table ??= patterns(app);
    const methods = new Set(table.filter((r) => r.re.test(c.req.path)).map((r) => r.method));
    if (methods.size === 0) return problemResponse(c, { code: 'not_found', status: 404, detail: `No route ${c.req.path}.` });
    if (methods.has('GET')) methods.add('HEAD');
    const allow = [...methods, 'OPTIONS'].sort().join(', ');
    if (c.req.method === 'OPTIONS') return c.body(null, 204, { allow });
    return problemResponse(c, { code: 'method_not_allowed', status: 405, detail: `${c.req.method} is not allowed on ${c.req.path}; use ${allow}.`, headers: { allow } });
  };
}

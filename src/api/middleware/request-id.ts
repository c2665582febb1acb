import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { ApiEnv } from '../types.ts';

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** What a client-supplied id may look like; anything else (log injection, huge values) is replaced. */
const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Takes the caller's X-Request-Id when it is safe, else makes one; echoes it on every response. */
export function requestId(): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const given = c.req.header(REQUEST_ID_HEADER);
    const id = given && SAFE_ID.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.set('log', c.var.ctx.log.child({ requestId: id }));
    c.header(REQUEST_ID_HEADER, id);
    await next();
    c.res.headers.set(REQUEST_ID_HEADER, id);
  };
}

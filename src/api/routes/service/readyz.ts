import { createRoute } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Readiness } from './schema.ts';

export const route = createRoute({
  operationId: 'readyz',
  tags: ['service'],
  summary: 'Readiness: indexes and models are loaded and the database answers',
  method: 'get',
  path: '/readyz',
  security: [],
  responses: {
    200: jsonContent(Readiness, 'Ready to serve'),
    503: jsonContent(Readiness, 'Still loading, or the database does not answer'),
  },
});
export type ReadyzResponse = typeof Readiness._output;

export function registerReadyz(app: App) {
  app.openapi(route, async (c) => {
    const ctx = c.var.ctx;
    try {
      if (ctx.ready && !(await ctx.ready())) return c.json({ ready: false, detail: 'loading indexes and models' }, 503);
      await ctx.db.execute(sql`select 1`);
    } catch (err) {
      c.var.log.warn({ err }, 'readiness check failed');
      return c.json({ ready: false, detail: 'the database does not answer' }, 503);
    }
    return c.json({ ready: true }, 200);
  });
}

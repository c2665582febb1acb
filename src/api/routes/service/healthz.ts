import { createRoute } from '@hono/zod-openapi';
import { jsonContent } from '../../schemas.ts';
import type { App } from '../../types.ts';
import { Health } from './schema.ts';

export const route = createRoute({
  operationId: 'healthz',
  tags: ['service'],
  summary: 'Liveness: the process answers',
  method: 'get',
  path: '/healthz',
  security: [],
  responses: { 200: jsonContent(Health, 'Alive') },
});
export type HealthzResponse = typeof Health._output;

export function registerHealthz(app: App) {
  app.openapi(route, (c) => c.json({ status: 'ok' as const }, 200));
}

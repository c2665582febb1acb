import { z } from '@hono/zod-openapi';

export const Health = z.object({ status: z.literal('ok') }).openapi('Health');
export const Readiness = z
  .object({ ready: z.boolean(), detail: z.string().optional() })
  .openapi('Readiness');

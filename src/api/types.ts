import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppContext } from '../context.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Principal } from './middleware/auth.ts';

/**
 * The part of the application context the HTTP layer uses. Routes read it from `c.var.ctx`, so
 * the spec can be generated without a context and tests can serve a database-only one.
 */
export type ApiContext = Pick<AppContext, 'env' | 'log' | 'mode' | 'db' | 'queue'> &
  Partial<Pick<AppContext, 'indexes'>> & {
    metrics?: Metrics;
    /** True once indexes and models are loaded (/readyz); without it, readiness is a database ping. */
    ready?: () => boolean | Promise<boolean>;
  };

export interface ApiEnv {
  Variables: {
    ctx: ApiContext;
    requestId: string;
    /** The context's logger with this request's id. */
    log: Logger;
    principal: Principal;
  };
}

export type App = OpenAPIHono<ApiEnv>;

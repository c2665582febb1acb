import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppContext } from '../context.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Principal } from './middleware/auth.ts';

/** The application context as the HTTP layer sees it; routes read it from `c.var.ctx`. */
export type ApiContext = AppContext & {
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

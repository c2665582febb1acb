import { OpenAPIHono } from '@hono/zod-openapi';
import { registerDocs } from './api/docs.ts';
import { defaultHook, onError } from './api/errors.ts';
import { authenticate } from './api/middleware/auth.ts';
import { bodyLimits } from './api/middleware/body-limit.ts';
import { corsFor, parseOrigins } from './api/middleware/cors.ts';
import { notFound } from './api/middleware/not-found.ts';
import { observe } from './api/middleware/observe.ts';
import { MemoryRateLimiter, rateLimit, type RateLimiter } from './api/middleware/rate-limit.ts';
import { requestId } from './api/middleware/request-id.ts';
import { openApiDocument } from './api/openapi.ts';
import { registerRoutes } from './api/routes/index.ts';
import type { ApiContext, ApiEnv, App } from './api/types.ts';
import { registerWeb } from './api/web.ts';
import { createMetrics, type Metrics } from './metrics.ts';

export type { ApiContext } from './api/types.ts';

export interface AppOptions {
  /** Service mode passes a Redis limiter (see startServer); the default counts in memory. */
  rateLimiter?: RateLimiter;
}

let fallbackMetrics: Metrics | undefined;

/** A new, empty API app with the validation hook: the routes are registered on it. */
export const newRouter = (): App => new OpenAPIHono<ApiEnv>({ defaultHook: defaultHook as never });

/** The documented routes alone, without a context: what `npm run openapi` writes. */
export const apiDocument = () => openApiDocument(registerRoutes(newRouter()));

/** The HTTP API over a context; shared by the server and the tests. */
export function newApp(ctx: ApiContext, opts: AppOptions = {}): App {
  const { env } = ctx;
  const authOff = env.MIRA_AUTH === 'off';
  if (authOff && ctx.mode !== 'embedded') throw new Error('MIRA_AUTH=off is allowed only in embedded mode (no DATABASE_URL), bound to loopback');
  const corsOrigins = parseOrigins(env.MIRA_CORS_ORIGINS);
  const metrics = ctx.metrics ?? (fallbackMetrics ??= createMetrics());

  const app = newRouter();
  app.use('*', async (c, next) => {
    c.set('ctx', ctx);
    await next();
  });
  app.use('*', requestId());
  app.use('*', observe(metrics));
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('x-content-type-options', 'nosniff');
  });
  const cors = corsFor(corsOrigins);
  if (cors) app.use('*', cors);
  app.use('/v1/*', bodyLimits({ jsonBytes: env.MIRA_MAX_JSON_BYTES, uploadBytes: env.MIRA_MAX_IMAGE_BYTES }));
  app.use('/v1/*', authenticate({ authOff, corsOrigins }));
  app.use('/v1/*', rateLimit(opts.rateLimiter ?? new MemoryRateLimiter(), env.MIRA_RATE_LIMIT_PER_MIN));

  registerRoutes(app);
  app.get('/openapi.json', (c) => c.json(openApiDocument(app)));
  registerDocs(app);
  registerWeb(app);
  app.get('/metrics', async (c) => c.body(await metrics.scrape(), 200, { 'content-type': metrics.registry.contentType }));

  app.notFound(notFound(app));
  app.onError(onError);
  return app;
}

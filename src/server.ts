import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { RedisRateLimiter, type RateLimiter } from './api/middleware/rate-limit.ts';
import { newApp, type ApiContext } from './app.ts';

export interface ServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** How long close() lets requests in flight finish before cutting their connections. */
  drainMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;
export const isLoopback = (host: string): boolean => LOOPBACK.test(host);

/**
 * Serves the API. No-auth mode is refused unless embedded and bound to loopback, and announced
 * when allowed. In service mode with Redis, rate limits are counted in Redis.
 */
export async function startServer(ctx: ApiContext, opts: ServerOptions): Promise<RunningServer> {
  if (ctx.env.MIRA_AUTH === 'off') {
    if (ctx.mode !== 'embedded' || !isLoopback(opts.host)) {
      throw new Error(`MIRA_AUTH=off is allowed only in embedded mode bound to loopback (this is ${ctx.mode} mode on ${opts.host}); create a key with mira keys create`);
    }
    ctx.log.warn({ host: opts.host }, 'API authentication is OFF (MIRA_AUTH=off): anyone who can reach this loopback address has full access');
  }
  const limiter: RateLimiter | undefined = ctx.mode === 'service' && ctx.env.REDIS_URL ? RedisRateLimiter.connect(ctx.env.REDIS_URL) : undefined;
  const app = newApp(ctx, limiter ? { rateLimiter: limiter } : {});

  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: opts.host, port: opts.port }, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  ctx.log.info({ host: opts.host, port }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), opts.drainMs ?? 10_000);
        await closed;
        clearTimeout(timer);
        await limiter?.close();
      })()),
  };
}

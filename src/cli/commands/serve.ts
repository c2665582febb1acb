import { rename, writeFile } from 'node:fs/promises';
import type { Env } from '../../config.ts';
import type { AppContext } from '../../context.ts';
import type { RunningServer } from '../../server.ts';
import { intFlag, parse, type Command } from '../command.ts';

export const serve: Command = {
  summary: 'serve the HTTP API and the web UI (and, without Redis, run the jobs in-process)',
  help: `usage: mira serve [--host 127.0.0.1] [--port 8080] [--port-file FILE] [--json]

Without DATABASE_URL the data lives in MIRA_DATA_DIR (PGlite) and jobs run in this process. With
DATABASE_URL and REDIS_URL, run \`mira worker\` processes beside it; several \`mira serve\` replicas can
share one Postgres, each following the others' writes. /readyz turns true once models and indexes
are loaded. Stops on SIGTERM or Ctrl-C after letting requests in flight finish (exit 0). --port-file
writes the port it listens on (useful with --port 0, which picks a free one) once it listens;
--json prints {"url","port","mode"} as one line instead of the greeting.

examples:
  mira serve
  mira serve --port 0 --port-file /tmp/mira.port
  MIRA_AUTH=off mira serve --port 9000          # embedded, loopback only, no API keys
  DATABASE_URL=postgres://... REDIS_URL=redis://... mira serve --host 0.0.0.0`,
  async run(argv) {
    const { values } = parse(argv, { host: { type: 'string' }, port: { type: 'string' }, 'port-file': { type: 'string' }, json: { type: 'boolean', default: false } }, false);
    await serveUntilStopped({
      ...(values.host !== undefined ? { host: values.host } : {}),
      ...(values.port !== undefined ? { port: values.port === '0' ? 0 : intFlag(values.port, 'port', 8080) } : {}),
      ...(values['port-file'] !== undefined ? { portFile: values['port-file'] } : {}),
      onListening(server, ctx) {
        if (values.json) console.log(JSON.stringify({ url: server.url, port: server.port, mode: ctx.mode }));
        else console.log(`mira: serving ${server.url} (${ctx.mode} mode${ctx.queue.kind === 'in-process' ? ', jobs in-process' : ', jobs on Redis: run mira worker'})`);
      },
    });
  },
};

export interface ServeOptions {
  /** Defaults: MIRA_HOST, MIRA_PORT. */
  host?: string;
  port?: number;
  portFile?: string;
  env?: Env;
  /** Called once the server listens, before the models and indexes are warmed. */
  onListening(server: RunningServer, ctx: AppContext): void;
  /** Called once /readyz is true. */
  onReady?(server: RunningServer, ctx: AppContext): void;
}

/** Serves the API (and the web UI) until SIGTERM or SIGINT, then drains and closes the store. */
export async function serveUntilStopped(opts: ServeOptions): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  // Imported on demand, so that `mira --help` and usage errors do not load the server and the models.
  const [{ createContext }, { startServer }] = await Promise.all([import('../../context.ts'), import('../../server.ts')]);
  const ctx = await createContext({ role: 'api', ...(opts.env ? { env: opts.env } : {}) });
  let server: RunningServer | undefined;
  try {
    const host = opts.host ?? ctx.env.MIRA_HOST;
    const port = opts.port ?? ctx.env.MIRA_PORT;
    server = await startServer(ctx, { host, port }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') throw err;
      throw new Error(`${host}:${port} is already in use: pick another port with --port N (or MIRA_PORT), 0 for any free one`);
    });
    const { portFile } = opts;
    // Written whole under another name first, so a reader never sees half a number.
    if (portFile) await writeFile(`${portFile}.tmp`, `${server.port}\n`).then(() => rename(`${portFile}.tmp`, portFile));
    opts.onListening(server, ctx);
    await ctx.warm();
    ctx.log.info('ready');
    opts.onReady?.(server, ctx);
    await stopped;
  } finally {
    await server?.close();
    await ctx.close();
  }
}

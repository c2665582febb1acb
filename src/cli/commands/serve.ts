import { rename, writeFile } from 'node:fs/promises';
import { createContext } from '../../context.ts';
import { startServer } from '../../server.ts';
import { intFlag, parse, type Command } from '../command.ts';

export const serve: Command = {
  summary: 'serve the HTTP API (and, without Redis, run the jobs in-process)',
  help: `usage: mira serve [--host 127.0.0.1] [--port 8080] [--port-file FILE]

Without DATABASE_URL the data lives in MIRA_DATA_DIR (PGlite) and jobs run in this process. With
DATABASE_URL and REDIS_URL, run \`mira worker\` processes beside it; several \`mira serve\` replicas can
share one Postgres, each following the others' writes. /readyz turns true once models and indexes
are loaded. Stops on SIGTERM after letting requests in flight finish. --port-file writes the port
it listens on (useful with --port 0, which picks a free one) once it listens.

examples:
  mira serve
  mira serve --port 0 --port-file /tmp/mira.port
  MIRA_AUTH=off mira serve --port 9000          # embedded, loopback only, no API keys
  DATABASE_URL=postgres://... REDIS_URL=redis://... mira serve --host 0.0.0.0`,
  async run(argv) {
    const { values } = parse(argv, { host: { type: 'string' }, port: { type: 'string' }, 'port-file': { type: 'string' } }, false);
    const ctx = await createContext({ role: 'api' });
    const host = values.host ?? ctx.env.MIRA_HOST;
    const port = values.port === undefined ? ctx.env.MIRA_PORT : values.port === '0' ? 0 : intFlag(values.port, 'port', 8080);
    const server = await startServer(ctx, { host, port });
    const portFile = values['port-file'];
    // Written whole under another name first, so a reader never sees half a number.
    if (portFile) await writeFile(`${portFile}.tmp`, `${server.port}\n`).then(() => rename(`${portFile}.tmp`, portFile));
    console.log(`mira: serving ${server.url} (${ctx.mode} mode${ctx.queue.kind === 'in-process' ? ', jobs in-process' : ', jobs on Redis: run mira worker'})`);
    await ctx.warm();
    ctx.log.info('ready');
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await server.close();
    await ctx.close();
  },
};

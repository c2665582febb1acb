/**
 * The job worker process (`mira worker`): takes BullMQ jobs from Redis and runs their processors.
 * On SIGTERM or SIGINT it stops taking jobs, lets active ones finish within the deadline (the rest
 * return to the queue) and closes its connections.
 */
import { createContext, processorDeps } from '../src/context.ts';
import { startBullWorkers } from '../src/jobs/bull.ts';
import { IMPLEMENTED_KINDS, processors } from '../src/jobs/processors/index.ts';
import { reconcile, RECONCILE_GRACE } from '../src/jobs/reconcile.ts';
import { processorTable } from '../src/jobs/registry.ts';

export async function runWorker(opts: { shutdownDeadlineMs?: number } = {}): Promise<void> {
  const ctx = await createContext({ role: 'worker' });
  if (!ctx.env.REDIS_URL) {
    await ctx.close();
    throw new Error('mira worker needs REDIS_URL (without Redis, `mira serve` runs the jobs in-process)');
  }
  const table = processorTable(processors, IMPLEMENTED_KINDS);
  const workers = startBullWorkers(processorDeps(ctx), table, {
    redisUrl: ctx.env.REDIS_URL,
    prefix: ctx.env.MIRA_QUEUE_PREFIX,
    lockMs: ctx.env.MIRA_JOB_LOCK_MS,
    log: ctx.log,
  });
  // Listening before anything else is awaited: a SIGTERM during startup still stops it gracefully.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      ctx.log.info({ signal }, 'worker stopping');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  ctx.log.info({ kinds: [...table.keys()], mode: ctx.mode }, 'worker started');
  // Pending images and job records the queue lost (a Redis restart): at startup, then periodically.
  await reconcile(ctx.db, ctx.queue, ctx.log, RECONCILE_GRACE);
  const reconciling = setInterval(() => {
    reconcile(ctx.db, ctx.queue, ctx.log, RECONCILE_GRACE).catch((err: Error) => ctx.log.warn({ err: err.message }, 'reconciliation failed'));
  }, ctx.env.MIRA_RECONCILE_MS);
  await stopped;
  clearInterval(reconciling);
  await workers.close(opts.shutdownDeadlineMs ?? 30_000);
  await ctx.close();
  ctx.log.info('worker stopped');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runWorker().then(
    () => process.exit(0),
    (err) => {
      console.error(`mira worker: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

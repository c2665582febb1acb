import { parse, type Command } from '../command.ts';

export const worker: Command = {
  summary: 'run a job worker (BullMQ; needs REDIS_URL)',
  help: `usage: mira worker

Takes ingest jobs from Redis and extracts features. Stops on SIGTERM: no new jobs, active ones
finish within 30 s or return to the queue.

example:
  DATABASE_URL=postgres://... REDIS_URL=redis://... mira worker`,
  async run(argv) {
    parse(argv, {}, false);
    // Imported on demand, so that `mira --help` does not load the job processors and the models.
    const { runWorker } = await import('../../../workers/main.ts');
    await runWorker();
  },
};

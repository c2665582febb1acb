import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BullJobQueue, CLOSE_GRACE_MS, startBullWorkers, type WorkerHandle } from '../../src/jobs/bull.ts';
import { InProcessJobQueue } from '../../src/jobs/in-process.ts';
import { processorTable } from '../../src/jobs/registry.ts';
import { PermanentJobError, type JobQueue, type Processor } from '../../src/jobs/types.ts';

const REDIS_URL = process.env.REDIS_URL;
const quiet = { info: () => {}, warn: () => {} };

/** A processor whose behaviour each payload chooses, recording every call. */
function recorder() {
  const calls: { id: string; attempt: number; n: number }[] = [];
  const done = new Map<string, (v: unknown) => void>();
  const settled = (id: string) => new Promise((r) => done.set(id, r));
  const proc: Processor<object, { n: number; mode: 'ok' | 'flaky' | 'permanent' }> = {
    kind: 'ingest',
    payload: z.object({ n: z.number(), mode: z.enum(['ok', 'flaky', 'permanent']) }),
    queue: { attempts: 3, backoffMs: 20, concurrency: 4, keepCompleted: 10, keepFailed: 10 },
    async process(_ctx, p, run) {
      calls.push({ id: run.id, attempt: run.attempt, n: p.n });
      const finish = () => done.get(run.id)?.(run.attempt);
      if (p.mode === 'permanent') {
        finish();
        throw new PermanentJobError('bad input', 'bad_input');
      }
      if (p.mode === 'flaky' && run.attempt < 3) throw new Error('transient');
      finish();
      return p.n * 2;
    },
  };
  return { calls, proc, settled };
}

type Harness = { queue: JobQueue; stop: () => Promise<void> };
const harnesses: Record<string, (proc: Processor<object, any>) => Promise<Harness>> = {
  'in-process': async (proc) => {
    const queue = new InProcessJobQueue(() => ({}), processorTable([proc], ['ingest']), quiet);
    return { queue, stop: () => queue.close() };
  },
  ...(REDIS_URL
    ? {
        bullmq: async (proc: Processor<object, any>) => {
          const prefix = `mira-test-${randomUUID().slice(0, 8)}`;
          const table = processorTable([proc], ['ingest']);
          const queue = await BullJobQueue.connect(table, { redisUrl: REDIS_URL, prefix });
          const workers: WorkerHandle = startBullWorkers({}, table, { redisUrl: REDIS_URL, prefix, log: quiet });
          return { queue, stop: async () => (await workers.close(5000), await queue.close()) };
        },
      }
    : {}),
};
if (!REDIS_URL) console.warn('BullMQ job tests skipped: REDIS_URL is not set');

let current: Harness | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

describe.each(Object.keys(harnesses))('jobs through %s', (name) => {
  it('runs a job once per job id, even when enqueued twice', async () => {
    const r = recorder();
    current = await harnesses[name]!(r.proc);
    const finished = r.settled('job-a');
    await current.queue.enqueue('ingest', { n: 1, mode: 'ok' }, { jobId: 'job-a' });
    await current.queue.enqueue('ingest', { n: 1, mode: 'ok' }, { jobId: 'job-a' });
    await finished;
    await new Promise((res) => setTimeout(res, 100)); // a duplicate would have started by now
    expect(r.calls.filter((c) => c.id === 'job-a')).toHaveLength(1);
  });

  it('retries transient failures with backoff until they succeed', async () => {
    const r = recorder();
    current = await harnesses[name]!(r.proc);
    const finished = r.settled('job-flaky');
    await current.queue.enqueue('ingest', { n: 2, mode: 'flaky' }, { jobId: 'job-flaky' });
    expect(await finished).toBe(3);
    expect(r.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
  });

  it('does not retry a permanent failure', async () => {
    const r = recorder();
    current = await harnesses[name]!(r.proc);
    const finished = r.settled('job-bad');
    await current.queue.enqueue('ingest', { n: 3, mode: 'permanent' }, { jobId: 'job-bad' });
    await finished;
    await new Promise((res) => setTimeout(res, 150)); // past the first backoff
    expect(r.calls).toHaveLength(1);
  });

  it('does not retry, nor run, a job whose payload is invalid', async () => {
    const r = recorder();
    current = await harnesses[name]!(r.proc);
    await current.queue.enqueue('ingest', { n: 'four' }, { jobId: 'job-invalid' });
    const ok = r.settled('job-after');
    await current.queue.enqueue('ingest', { n: 5, mode: 'ok' }, { jobId: 'job-after' });
    await ok;
    expect(r.calls.map((c) => c.id)).toEqual(['job-after']);
  });
});

describe.skipIf(!REDIS_URL)('closing BullMQ workers', () => {
  /** A processor that holds its job until its signal aborts, or for good when `ignoreAbort`. */
  function holder(ignoreAbort: boolean) {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const aborted: string[] = [];
    const proc: Processor<object, object> = {
      kind: 'ingest',
      payload: z.object({}),
      queue: { attempts: 3, backoffMs: 20, concurrency: 1, keepCompleted: 10, keepFailed: 10 },
      process: (_ctx, _p, run) =>
        new Promise((_resolve, reject) => {
          started();
          run.signal.addEventListener('abort', () => {
            aborted.push(run.id);
            if (!ignoreAbort) reject(new Error('stopped'));
          });
        }),
    };
    return { proc, running, aborted };
  }

  for (const ignoreAbort of [false, true]) {
    it(`returns soon after its deadline when a job ${ignoreAbort ? 'ignores its abort signal' : 'is still running'}, and the job stays queued`, async () => {
      const h = holder(ignoreAbort);
      const prefix = `mira-test-${randomUUID().slice(0, 8)}`;
      const table = processorTable([h.proc], ['ingest']);
      const queue = await BullJobQueue.connect(table, { redisUrl: REDIS_URL!, prefix });
      const workers = startBullWorkers({}, table, { redisUrl: REDIS_URL!, prefix, log: quiet });
      try {
        await queue.enqueue('ingest', {}, { jobId: 'held' });
        await h.running;
        const t0 = performance.now();
        await workers.close(300);
        const ms = performance.now() - t0;
        expect(ms, `closed after ${ms.toFixed(0)} ms`).toBeLessThan(300 + CLOSE_GRACE_MS + 1000);
        expect(h.aborted, 'the running try was told to stop').toEqual(['held']);
        expect(await queue.state('ingest', 'held'), 'the job is not lost: another worker takes it after its lock expires').not.toBe('unknown');
      } finally {
        await queue.close();
      }
    });
  }
});

describe.skipIf(!REDIS_URL)('when Redis is down', () => {
  it('enqueueing fails fast with queue_unavailable instead of hanging', async () => {
    const { proc } = recorder();
    const table = processorTable([proc], ['ingest']);
    // Nothing listens on this loopback port.
    await expect(BullJobQueue.connect(table, { redisUrl: 'redis://127.0.0.1:1' }, 1000)).rejects.toMatchObject({ code: 'queue_unavailable' });
  });
});

describe('processor table', () => {
  it('refuses two processors for one kind and a kind without one', () => {
    const { proc } = recorder();
    expect(() => processorTable([proc, proc], ['ingest'])).toThrow(/two processors/);
    expect(() => processorTable([proc], ['ingest', 'extract'])).toThrow(/without a processor: extract/);
  });
});

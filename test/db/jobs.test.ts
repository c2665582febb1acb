import { inArray } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { NotFound } from '../../src/db/errors.ts';
import { createJob, getJob, listJobs, markJobsLost, updateJob, type Job } from '../../src/db/queries/jobs.ts';
import { jobs } from '../../src/db/schema/index.ts';
import { dbModes, ownCollection, suffix, useDatabase } from './modes.ts';

describe.each(dbModes)('jobs, $mode', (m) => {
  describe.skipIf(m.skip)('jobs', () => {
    const database = useDatabase(m);
    const db = () => database().db;

    /** A collection of its own, and removal of the jobs the test made. */
    async function own() {
      const c = await ownCollection(db());
      const ids: string[] = [];
      const make = async (state?: Job['state'], kind: Job['kind'] = 'extract') => {
        const id = `${c.collection.id}:${suffix()}`;
        ids.push(id);
        const { job } = await createJob(db(), { id, kind, collectionId: c.collection.id, payload: { n: ids.length } });
        return state ? (await updateJob(db(), id, { state }))! : job;
      };
      const cleanup = async () => {
        if (ids.length) await db().delete(jobs).where(inArray(jobs.id, ids));
        await c.cleanup();
      };
      return { collection: c.collection, make, cleanup };
    }

    it('creating a job twice returns the first record', async () => {
      const { collection, make, cleanup } = await own();
      try {
        const job = await make();
        const again = await createJob(db(), { id: job.id, kind: 'extract', collectionId: collection.id, payload: { other: true } });
        expect(again.created).toBe(false);
        expect(again.job).toEqual(job);
        expect(job).toMatchObject({ state: 'queued', attempts: 0, progress: { done: 0, total: 0 }, startedAt: null, finishedAt: null });
      } finally {
        await cleanup();
      }
    });

    it('state changes stamp their times and count attempts', async () => {
      const { make, cleanup } = await own();
      try {
        const job = await make();
        const running = (await updateJob(db(), job.id, { state: 'running', progress: { done: 1, total: 4 } }))!;
        expect(running.startedAt).toBeInstanceOf(Date);
        expect(running.attempts).toBe(1);
        const retried = (await updateJob(db(), job.id, { state: 'queued', error: 'transient' }))!;
        const again = (await updateJob(db(), job.id, { state: 'running' }))!;
        expect(again.attempts).toBe(2);
        expect(again.startedAt, 'started_at is the first start').toEqual(running.startedAt);
        expect(retried.finishedAt).toBeNull();
        const done = (await updateJob(db(), job.id, { state: 'completed', counts: { added: 3 }, result: { ok: true }, error: null }))!;
        expect(done).toMatchObject({ state: 'completed', counts: { added: 3 }, result: { ok: true }, error: null });
        expect(done.finishedAt).toBeInstanceOf(Date);
        expect(await getJob(db(), job.id)).toEqual(done);
      } finally {
        await cleanup();
      }
    });

    it('an update guarded by `from` does nothing when the job has moved on', async () => {
      const { make, cleanup } = await own();
      try {
        const job = await make('completed');
        expect(await updateJob(db(), job.id, { state: 'running' }, { from: ['queued'] })).toBeUndefined();
        expect((await getJob(db(), job.id))?.state).toBe('completed');
        await expect(updateJob(db(), `missing-${suffix()}`, { state: 'running' })).rejects.toBeInstanceOf(NotFound);
      } finally {
        await cleanup();
      }
    });

    it('lists by collection and state, newest first, each job once across pages', async () => {
      const { collection, make, cleanup } = await own();
      try {
        const made: Job[] = [];
        for (let i = 0; i < 7; i++) made.push(await make(i % 2 ? 'running' : undefined));
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await listJobs(db(), { collectionId: collection.id, limit: 2, cursor });
          seen.push(...page.items.map((j) => j.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        expect(seen).toEqual([...made].reverse().map((j) => j.id));
        const running = await listJobs(db(), { collectionId: collection.id, state: 'running', limit: 10 });
        expect(running.items.map((j) => j.id).sort()).toEqual(made.filter((_, i) => i % 2).map((j) => j.id).sort());
        const tune = [await make(undefined, 'finetune'), await make('running', 'finetune')];
        const byKind = await listJobs(db(), { collectionId: collection.id, kind: 'finetune', limit: 10 });
        expect(byKind.items.map((j) => j.id)).toEqual([tune[1]!.id, tune[0]!.id]);
        const both = await listJobs(db(), { collectionId: collection.id, kind: 'finetune', state: 'running', limit: 10 });
        expect(both.items.map((j) => j.id)).toEqual([tune[1]!.id]);
      } finally {
        await cleanup();
      }
    });

    it('marks unfinished jobs lost, and leaves finished ones', async () => {
      const { make, cleanup } = await own();
      try {
        const queued = await make();
        const running = await make('running');
        const done = await make('completed');
        const lost = await markJobsLost(db(), { ids: [queued.id, running.id, done.id], reason: 'not in the queue after restart' });
        expect(lost.sort()).toEqual([queued.id, running.id].sort());
        const after = await getJob(db(), running.id);
        expect(after).toMatchObject({ state: 'lost', error: 'not in the queue after restart' });
        expect(after?.finishedAt).toBeInstanceOf(Date);
        expect((await getJob(db(), done.id))?.state).toBe('completed');
        const stale = await make('running');
        expect(await markJobsLost(db(), { ids: [stale.id], updatedBefore: new Date(Date.now() - 60_000), reason: 'stale' })).toEqual([]);
      } finally {
        await cleanup();
      }
    });
  });
});

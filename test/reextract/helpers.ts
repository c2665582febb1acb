import { resolve } from 'node:path';
import type { AppContext } from '../../src/context.ts';
import { getCollection, type Collection } from '../../src/db/queries/collections.ts';
import { getJob, type Job } from '../../src/db/queries/jobs.ts';
import type { Model } from '../../src/db/queries/models.ts';
import { registerBundle } from '../../src/models/registry.ts';
import { search } from '../../src/search/search.ts';
import { bundleCopy } from '../inference/helpers.ts';
import { eventually, uniqueName } from '../support/context.ts';
import { REPO } from '../support/env.ts';

/**
 * Two versions of one model under a name only this test uses: version 1 is the tiny bundle (16-d),
 * version 2 the default bundle (128-d, other weights), so results tell which version served them.
 */
export async function twoVersions(ctx: Pick<AppContext, 'db'>): Promise<{ v1: Model; v2: Model; cleanup(): Promise<void> }> {
  const name = uniqueName('reextract-model');
  const b1 = await bundleCopy((m) => Object.assign(m, { name, version: '1' }));
  const b2 = await bundleCopy((m) => Object.assign(m, { name, version: '2' }), resolve(REPO, 'models/default'));
  const v1 = (await registerBundle(ctx.db, b1.dir)).model;
  const v2 = (await registerBundle(ctx.db, b2.dir)).model;
  return { v1, v2, cleanup: async () => void (await Promise.all([b1.cleanup(), b2.cleanup()])) };
}

export interface QueryLoop {
  /** Queries answered so far. */
  runs(): number;
  /** Stops the loop and returns what every query saw. */
  stop(): Promise<{ runs: number; errors: string[]; emptyPages: number; shortPages: number; models: string[] }>;
}

/** Searches the collection back to back (as a client would, reading the collection each time) until stopped. */
export function queryLoop(ctx: AppContext, collectionId: string, k: number): QueryLoop {
  let stopped = false;
  const seen = { runs: 0, errors: [] as string[], emptyPages: 0, shortPages: 0, models: [] as string[] };
  const loop = (async () => {
    while (!stopped) {
      try {
        const collection = (await getCollection(ctx.db, { id: collectionId }))!;
        const r = await search(ctx, { collection, query: { text: 'a red circle on a blue square' }, k, rerank: { enabled: false } });
        seen.runs++;
        if (r.hits.length === 0) seen.emptyPages++;
        if (r.hits.length < k) seen.shortPages++;
        if (seen.models.at(-1) !== r.model) seen.models.push(r.model);
      } catch (err) {
        seen.errors.push((err as Error).message);
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    runs: () => seen.runs,
    async stop() {
      stopped = true;
      await loop;
      return seen;
    },
  };
}

/** Waits until the job has finished (any final state) and returns it with the collection. */
export async function finished(ctx: AppContext, jobId: string, ms = 120_000): Promise<{ job: Job; collection: Collection }> {
  const job = await eventually(
    `job ${jobId} to finish`,
    async () => {
      const j = await getJob(ctx.db, jobId);
      return j && ['completed', 'failed', 'cancelled', 'lost'].includes(j.state) ? j : undefined;
    },
    ms,
    100,
  );
  return { job, collection: (await getCollection(ctx.db, { id: job.collectionId! }))! };
}

/**
 * A second process for the index tests, started with tsx. MIRA_CHILD (JSON) says what to do:
 * - `follow`: open the index, follow Postgres, answer search requests: one JSON line in on stdin
 *   (`{id, vector, k}`), one out on stdout (`{id, hits, stats}`).
 * - `compact`: open the index (its sync starts a compaction) and SIGKILL this process when the
 *   compaction reaches `crashAt`.
 */
import { createInterface } from 'node:readline';
import { openDatabase } from '../../src/db/client.ts';
import { VectorIndex } from '../../src/index/index.ts';

interface Job {
  mode: 'follow' | 'compact';
  url: string;
  dataDir: string;
  collectionId: string;
  modelId: string;
  intervalMs?: number;
  crashAt?: string;
}

const job = JSON.parse(process.env.MIRA_CHILD ?? '{}') as Job;
const send = (msg: object) => process.stdout.write(JSON.stringify(msg) + '\n');
const database = await openDatabase({ url: job.url, max: 2 });
const index = await VectorIndex.open({
  db: database.db,
  dataDir: job.dataDir,
  collectionId: job.collectionId,
  modelId: job.modelId,
  onStep: (step) => {
    if (step === job.crashAt) process.kill(process.pid, 'SIGKILL');
  },
});

if (job.mode === 'compact') {
  await index.idle();
  send({ done: true, stats: index.stats() });
  await database.close();
} else {
  index.startFollowing(job.intervalMs);
  send({ ready: true, stats: index.stats() });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const req = JSON.parse(line) as { id: number; vector: number[]; k: number };
    send({ id: req.id, hits: index.search(req.vector, req.k), stats: index.stats() });
  }
  await index.close();
  await database.close();
}

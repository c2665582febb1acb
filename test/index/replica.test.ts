import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { VectorIndex } from '../../src/index/index.ts';
import { addVectors, DATABASE_URL, deleteImages, ownCollection, unitVectors, useTempDirs, waitFor, type Owned } from './helpers.ts';
import { startChild, type ChildProcessHandle } from './processes.ts';

/** Two real processes share Postgres (PGlite is one process's, so this is Postgres only). */
describe.skipIf(!DATABASE_URL)('a replica in another process follows Postgres', () => {
  const tempDir = useTempDirs();
  let database: Database;
  let own: Owned;
  let child: ChildProcessHandle | undefined;
  beforeAll(async () => {
    database = await openDatabase({ url: DATABASE_URL });
  });
  afterAll(() => database?.close());
  afterEach(async () => {
    await child?.stop();
    child = undefined;
    await own?.cleanup();
  });

  /** Time from `since` until the child's top hit for `vector` satisfies `ok`. */
  async function msUntil(since: number, vector: Float32Array, ok: (labels: number[]) => boolean): Promise<number> {
    await waitFor('the replica to catch up', 5_000, async () => ok((await child!.search(vector, 3)).hits.map((h) => h.label)) || undefined);
    return performance.now() - since;
  }

  it('an image written by this process is searchable in the other within 2 s, and its delete hides it within 2 s', async () => {
    const db = database.db;
    own = await ownCollection(db, 16);
    await addVectors(db, own, unitVectors(30, 16, 11));
    child = startChild({ mode: 'follow', url: DATABASE_URL, dataDir: await tempDir(), collectionId: own.collectionId, modelId: own.modelId, intervalMs: 500 });
    const ready = await child.next(60_000);
    expect(ready, JSON.stringify(ready)).toMatchObject({ ready: true, stats: { count: 30, openedBy: 'rebuilt-missing' } });

    // This process is the writing replica: it syncs right after its own write.
    const local = await VectorIndex.open({ db, dataDir: await tempDir(), collectionId: own.collectionId, modelId: own.modelId });
    const [fresh] = unitVectors(1, 16, 12345);
    const { labels, imageIds } = await addVectors(db, own, [fresh!]);
    const written = performance.now();
    await local.sync();
    expect(local.search(fresh!, 1)[0]?.label, 'the writer sees its own write at once').toBe(labels[0]);

    const addMs = await msUntil(written, fresh!, (l) => l[0] === labels[0]);
    expect(addMs, `seen by the other process after ${addMs.toFixed(0)} ms`).toBeLessThan(2000);

    await deleteImages(db, imageIds);
    const deleted = performance.now();
    const deleteMs = await msUntil(deleted, fresh!, (l) => !l.includes(labels[0]!));
    expect(deleteMs, `delete seen after ${deleteMs.toFixed(0)} ms`).toBeLessThan(2000);
    console.log(`replica: add visible after ${addMs.toFixed(0)} ms, delete after ${deleteMs.toFixed(0)} ms`);
    await local.close({ save: false });
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { VectorIndex, type IndexStep } from '../../src/index/index.ts';
import { addVectors, DATABASE_URL, deleteImages, ownCollection, unitVectors, useTempDirs, type Owned } from './helpers.ts';
import { startChild } from './processes.ts';

/** A real crash: a child process compacts the index and is SIGKILLed between two steps. */
describe.skipIf(!DATABASE_URL)('an index process killed mid-compaction', () => {
  const tempDir = useTempDirs();
  let database: Database;
  let own: Owned | undefined;
  beforeAll(async () => {
    database = await openDatabase({ url: DATABASE_URL });
  });
  afterAll(() => database?.close());
  afterEach(async () => {
    await own?.cleanup();
    own = undefined;
  });

  const steps: IndexStep[] = ['compaction-built', 'temp-written', 'hnsw-renamed'];
  it.each(steps)('leaves files that reopen with every live image and no deleted one (killed at %s)', async (step) => {
    const db = database.db;
    own = await ownCollection(db, 16);
    const vectors = unitVectors(300, 16, 5);
    const { labels, imageIds } = await addVectors(db, own, vectors);
    const dataDir = await tempDir();
    const ids = { db, dataDir, collectionId: own.collectionId, modelId: own.modelId };
    await (await VectorIndex.open(ids)).close();
    await deleteImages(db, imageIds.slice(0, 90));

    const child = startChild({ mode: 'compact', url: DATABASE_URL, dataDir, collectionId: own.collectionId, modelId: own.modelId, crashAt: step });
    const exit = await child.exited;
    expect(exit.signal, `the child should die at ${step}; stderr:\n${exit.stderr}`).toBe('SIGKILL');

    const reopened = await VectorIndex.open(ids);
    try {
      expect(reopened.openedBy, reopened.openReason).toBe('file');
      // Killed between the renames: the new graph and its complete sidecar temp are rolled forward.
      if (step === 'hnsw-renamed') expect(reopened.openReason).toMatch(/interrupted save/);
      await reopened.idle();
      expect(reopened.stats()).toMatchObject({ count: 210 });
      const found = reopened.search(vectors[0]!, 300).map((h) => h.label);
      expect(found.sort()).toEqual(labels.slice(90).sort());
    } finally {
      await reopened.close({ save: false });
    }
  });
});

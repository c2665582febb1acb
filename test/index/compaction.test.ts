import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { indexPaths } from '../../src/index/files.ts';
import { VectorIndex, type IndexStep } from '../../src/index/index.ts';
import { addVectors, captureLogger, deleteImages, modes, ownCollection, unitVectors, useDatabase, useTempDirs, type Owned } from './helpers.ts';

describe.each(modes)('deletes, compaction and growth, $mode', (m) => {
  const tempDir = useTempDirs();
  const db = useDatabase(m, tempDir);
  const opened: VectorIndex[] = [];
  let own: Owned | undefined;
  afterEach(async () => {
    for (const ix of opened.splice(0)) await ix.close({ save: false });
    await own?.cleanup();
    own = undefined;
  });

  async function openIndex(dataDir: string, extra: Partial<Parameters<typeof VectorIndex.open>[0]> = {}) {
    const ix = await VectorIndex.open({ db: db(), dataDir, collectionId: own!.collectionId, modelId: own!.modelId, graceMs: 20, ...extra });
    opened.push(ix);
    return ix;
  }

  async function hundred() {
    own = await ownCollection(db(), 8);
    const vectors = unitVectors(100, 8, 21);
    return { vectors, ...(await addVectors(db(), own, vectors)) };
  }

  it.skipIf(m.skip)('hides deleted images from search, and compacts only once tombstones pass 20%', async () => {
    const { vectors, labels, imageIds } = await hundred();
    const dataDir = await tempDir();
    const ix = await openIndex(dataDir);
    await deleteImages(db(), imageIds.slice(0, 20));
    await ix.sync();
    await ix.idle();
    expect(ix.stats(), 'exactly 20% is not past the threshold').toMatchObject({ count: 80, deleted: 20, tombstoneRatio: 0.2 });
    for (const i of [0, 7, 19]) expect(ix.search(vectors[i]!, 5).map((h) => h.label), `deleted ${labels[i]}`).not.toContain(labels[i]);

    await deleteImages(db(), imageIds.slice(20, 21));
    await ix.sync();
    await ix.idle();
    expect(ix.stats()).toMatchObject({ count: 79, deleted: 0, tombstoneRatio: 0 });
    const all = ix.search(vectors[50]!, 100).map((h) => h.label);
    expect(all.sort()).toEqual(labels.slice(21).sort());
    const sidecar = JSON.parse(await readFile(indexPaths(dataDir, own!.collectionId, own!.modelId).sidecar, 'utf8'));
    expect(sidecar, 'the compacted graph was saved').toMatchObject({ count: 79, deleted: 0 });
  });

  const steps: IndexStep[] = ['compaction-built', 'temp-written', 'hnsw-renamed'];
  it.skipIf(m.skip).each(steps)('a compaction that fails at %s leaves files that reopen correctly', async (step) => {
    const { labels, imageIds, vectors } = await hundred();
    const dataDir = await tempDir();
    await (await openIndex(dataDir)).close();
    await deleteImages(db(), imageIds.slice(0, 30));
    let failed = false;
    const { logger, lines } = captureLogger();
    const failing = await openIndex(dataDir, {
      logger,
      onStep: (s) => {
        if (s === step && !failed) {
          failed = true;
          throw new Error(`injected failure at ${s}`);
        }
      },
    });
    await failing.idle();
    expect(failed, 'the compaction reached the step').toBe(true);
    expect(lines.some((l) => l.level === 40 && /compaction failed/.test(l.msg)), JSON.stringify(lines)).toBe(true);

    const reopened = await openIndex(dataDir);
    expect(reopened.openedBy, reopened.openReason).toBe('file');
    if (step === 'hnsw-renamed') expect(reopened.openReason).toMatch(/interrupted save/);
    await reopened.idle();
    expect(reopened.stats().count).toBe(70);
    const found = reopened.search(vectors[0]!, 100).map((h) => h.label);
    expect(found.sort()).toEqual(labels.slice(30).sort());
  });

  it.skipIf(m.skip)('grows the graph as it fills, and keeps growing after a reload', async () => {
    own = await ownCollection(db(), 8);
    const vectors = unitVectors(150, 8, 33);
    const first = await addVectors(db(), own, vectors.slice(0, 100));
    const dataDir = await tempDir();
    const ix = await openIndex(dataDir, { initialCapacity: 16 });
    expect(ix.stats()).toMatchObject({ count: 100, capacity: 128 });
    await ix.close();
    const later = await addVectors(db(), own, vectors.slice(100));
    const again = await openIndex(dataDir);
    expect(again.openedBy).toBe('file');
    expect(again.stats()).toMatchObject({ count: 150, capacity: 256 });
    for (const [i, label] of [...first.labels, ...later.labels].entries()) {
      if (i % 10 === 0) expect(again.search(vectors[i]!, 1)[0]?.label, `vector ${i}`).toBe(label);
    }
  });
});

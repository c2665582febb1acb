import { open, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { indexPaths } from '../../src/index/files.ts';
import { IndexRegistry, VectorIndex } from '../../src/index/index.ts';
import { addVectors, captureLogger, deleteImages, modes, ownCollection, unitVectors, useDatabase, useTempDirs, type Owned } from './helpers.ts';

describe.each(modes)('index lifecycle, $mode', (m) => {
  const tempDir = useTempDirs();
  const db = useDatabase(m, tempDir);
  const opened: VectorIndex[] = [];
  let own: Owned | undefined;
  afterEach(async () => {
    for (const ix of opened.splice(0)) await ix.close({ save: false });
    await own?.cleanup();
    own = undefined;
  });

  async function openIndex(dataDir: string, logger = captureLogger().logger) {
    const ix = await VectorIndex.open({ db: db(), dataDir, collectionId: own!.collectionId, modelId: own!.modelId, logger, graceMs: 20 });
    opened.push(ix);
    return ix;
  }

  /** A collection with `n` vectors, and an index built, saved and closed in `dataDir`. */
  async function builtOnDisk(n: number) {
    own = await ownCollection(db(), 8);
    const vectors = unitVectors(n, 8, 7);
    const rows = await addVectors(db(), own, vectors);
    const dataDir = await tempDir();
    const first = await openIndex(dataDir);
    await first.close();
    opened.pop();
    return { dataDir, vectors, ...rows, paths: indexPaths(dataDir, own.collectionId, own.modelId) };
  }

  it.skipIf(m.skip)('builds from Postgres when there is no file, and says so', async () => {
    own = await ownCollection(db(), 8);
    const vectors = unitVectors(50, 8, 3);
    const { labels } = await addVectors(db(), own, vectors);
    const { logger, lines } = captureLogger();
    const ix = await openIndex(await tempDir(), logger);
    expect(ix.openedBy).toBe('rebuilt-missing');
    expect(ix.stats().count).toBe(50);
    expect(lines.map((l) => l.msg).join('\n')).toMatch(/no index file: building from Postgres/);
    for (const i of [0, 17, 49]) expect(ix.search(vectors[i]!, 1)[0]?.label, `nearest of vector ${i}`).toBe(labels[i]);
  });

  it.skipIf(m.skip)('loads the file and replays the adds and deletes made while it was closed', async () => {
    const { dataDir, labels, imageIds, paths } = await builtOnDisk(40);
    const saved = JSON.parse(await readFile(paths.sidecar, 'utf8'));
    expect(saved.seen, 'the sidecar records how far it read, so a reload fetches no vectors it has').toBe(Math.max(...labels));
    const more = unitVectors(5, 8, 99);
    const added = await addVectors(db(), own!, more);
    await deleteImages(db(), imageIds.slice(0, 3));
    const { logger, lines } = captureLogger();
    const ix = await openIndex(dataDir, logger);
    expect(ix.openedBy, ix.openReason).toBe('file');
    expect(lines.some((l) => /loaded from file, replayed 5 adds and 3 deletes/.test(l.msg)), JSON.stringify(lines)).toBe(true);
    expect(ix.stats()).toMatchObject({ count: 42, deleted: 3 });
    expect(ix.search(more[2]!, 1)[0]?.label).toBe(added.labels[2]);
    const everything = ix.search(more[0]!, 100).map((h) => h.label);
    expect(everything).toHaveLength(42);
    for (const gone of labels.slice(0, 3)) expect(everything, `deleted label ${gone}`).not.toContain(gone);
  });

  it.skipIf(m.skip)('syncing the same changes twice changes nothing the second time', async () => {
    const { dataDir, imageIds } = await builtOnDisk(10);
    const ix = await openIndex(dataDir);
    await addVectors(db(), own!, unitVectors(3, 8, 5));
    await deleteImages(db(), imageIds.slice(0, 2));
    expect(await ix.sync()).toMatchObject({ added: 3, deleted: 2 });
    expect(await ix.sync()).toMatchObject({ added: 0, deleted: 0 });
    expect(ix.stats()).toMatchObject({ count: 11, deleted: 2 });
  });

  const damage: [string, (p: ReturnType<typeof indexPaths>) => Promise<void>, RegExp][] = [
    ['truncated', async (p) => truncate(p.hnsw, Math.floor((await stat(p.hnsw)).size / 2)), /truncated/],
    ['corrupt (same size, flipped bytes)', (p) => flipBytes(p.hnsw), /sha256 differs/],
    ['paired with a corrupt sidecar', (p) => writeFile(p.sidecar, '{"format":1,'), /sidecar unreadable/],
    ['without its sidecar', (p) => unlink(p.sidecar), /sidecar missing/],
  ];
  it.skipIf(m.skip).each(damage)('rebuilds from Postgres when the file is %s, and logs why', async (_name, harm, why) => {
    const { dataDir, paths, labels, vectors } = await builtOnDisk(30);
    await harm(paths);
    const { logger, lines } = captureLogger();
    const ix = await openIndex(dataDir, logger);
    expect(ix.openedBy).toBe('rebuilt-corrupt');
    expect(ix.openReason).toMatch(why);
    const warning = lines.find((l) => l.level === 40);
    expect(warning?.msg, JSON.stringify(lines)).toMatch(/index file unusable .* rebuilding from Postgres/);
    expect(ix.stats().count).toBe(30);
    expect(ix.search(vectors[5]!, 1)[0]?.label).toBe(labels[5]);
    // The rebuilt index was saved: the next start loads it.
    await ix.close();
    opened.pop();
    expect((await openIndex(dataDir)).openedBy).toBe('file');
  });

  it.skipIf(m.skip)('rebuilds when the index file is missing beside its sidecar', async () => {
    const { dataDir, paths } = await builtOnDisk(12);
    await unlink(paths.hnsw);
    const ix = await openIndex(dataDir);
    expect(ix.openedBy).toBe('rebuilt-missing');
    expect(ix.stats().count).toBe(12);
  });

  it.skipIf(m.skip)('the registry opens one index per (collection, model), however many ask at once', async () => {
    own = await ownCollection(db(), 8);
    await addVectors(db(), own, unitVectors(5, 8, 1));
    const registry = new IndexRegistry({ db: db(), dataDir: await tempDir() });
    const [a, b] = await Promise.all([registry.get(own.collectionId, own.modelId), registry.get(own.collectionId, own.modelId)]);
    expect(a).toBe(b);
    expect(a.stats().count).toBe(5);
    await registry.close();
  });

  it.skipIf(m.skip)('rebuilds when the collection changed its HNSW parameters', async () => {
    const { dataDir, paths } = await builtOnDisk(12);
    const sidecar = JSON.parse(await readFile(paths.sidecar, 'utf8'));
    await writeFile(paths.sidecar, JSON.stringify({ ...sidecar, M: sidecar.M + 1 }));
    const ix = await openIndex(dataDir);
    expect(ix.openedBy).toBe('rebuilt-stale');
    expect(ix.openReason).toMatch(/M changed/);
  });
});

async function flipBytes(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  const { size } = await fh.stat();
  const buf = Buffer.alloc(64);
  await fh.read(buf, 0, 64, Math.floor(size / 3));
  for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ 0xff;
  await fh.write(buf, 0, 64, Math.floor(size / 3));
  await fh.close();
}

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { embeddings, images } from '../../src/db/schema/index.ts';
import { Horizon } from '../../src/index/horizon.ts';
import { VectorIndex } from '../../src/index/index.ts';
import { addVectors, DATABASE_URL, ownCollection, unitVectors, useTempDirs, type Owned } from './helpers.ts';

describe('the safe change mark', () => {
  const snap = (xmin: number, xmax: number) => ({ xmin: BigInt(xmin), xmax: BigInt(xmax) });

  it('does not pass a number while a transaction that was running at the scan may still commit below it', () => {
    let now = 0;
    const h = new Horizon(0, 0, 100, () => now);
    h.observe(snap(10, 12), 50); // xid 10 and 11 running
    now = 150;
    h.observe(snap(10, 15), 60); // 10 still running
    now = 300;
    expect(h.observe(snap(10, 16), 60), 'xid 10 still running').toBe(0);
    expect(h.seen).toBe(60);
    now = 400;
    expect(h.observe(snap(15, 17), 70), 'everything below the later scan`s xmax has ended').toBe(50);
    now = 600;
    expect(h.observe(snap(17, 17), 70), 'nothing running, and the last scan is a grace period old').toBe(70);
  });

  it('waits the grace period before trusting a later scan, so a writer between nextval and its row write is covered', () => {
    let now = 0;
    const h = new Horizon(0, 0, 100, () => now);
    h.observe(snap(5, 5), 10);
    now = 50;
    expect(h.observe(snap(9, 9), 10), 'idle, but within the grace period').toBe(0);
    now = 120;
    expect(h.observe(snap(9, 9), 10)).toBe(10);
  });

  it('keeps its list of scans short while an old transaction holds it back', () => {
    let now = 0;
    const h = new Horizon(0, 0, 100, () => now);
    for (let i = 0; i < 10_000; i++, now += 10) h.observe(snap(1, 2 + i), i);
    expect(h.safe).toBe(0);
    expect((h as unknown as { scans: unknown[] }).scans.length).toBeLessThanOrEqual(64);
    now += 200;
    h.observe(snap(20_000, 20_000), 10_000);
    now += 200;
    expect(h.observe(snap(20_000, 20_000), 10_000)).toBe(10_000);
  });
});

/** Needs two connections: one holds a transaction open while the other commits after it. */
describe.skipIf(!DATABASE_URL)('rows that commit out of label order, Postgres', () => {
  const tempDir = useTempDirs();
  let writer: Database;
  let reader: Database;
  let own: Owned | undefined;
  beforeAll(async () => {
    writer = await openDatabase({ url: DATABASE_URL });
    reader = await openDatabase({ url: DATABASE_URL });
  });
  afterAll(async () => {
    await writer?.close();
    await reader?.close();
  });
  afterEach(() => own?.cleanup());

  it('are not lost: a label taken before a later one but committed after it is still applied', async () => {
    own = await ownCollection(reader.db, 8);
    const [slow, fast] = unitVectors(2, 8, 9);
    const ix = await VectorIndex.open({ db: reader.db, dataDir: await tempDir(), collectionId: own.collectionId, modelId: own.modelId, graceMs: 10 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let slowLabel!: number;
    let taken!: () => void;
    const labelTaken = new Promise<void>((r) => (taken = r));
    // A writer that does not serialize on the collection: its label is taken now, committed later.
    const open = writer.db.transaction(async (tx) => {
      const [img] = await tx
        .insert(images)
        .values({ collectionId: own!.collectionId, sha256: 'slow'.padEnd(64, '0'), source: 'upload:slow.png', mime: 'image/png', width: 1, height: 1, bytes: 1 })
        .returning({ id: images.id });
      const [row] = await tx.insert(embeddings).values({ imageId: img!.id, collectionId: own!.collectionId, modelId: own!.modelId, vector: slow! }).returning({ label: embeddings.label });
      slowLabel = row!.label;
      taken();
      await gate;
    });
    await labelTaken;
    const { labels } = await addVectors(reader.db, own, [fast!]);
    expect(labels[0]).toBeGreaterThan(slowLabel);

    await ix.sync();
    expect(ix.search(fast!, 1)[0]?.label).toBe(labels[0]);
    for (let i = 0; i < 5; i++) await ix.sync();
    expect(ix.lastApplied, 'the mark stays below the open transaction`s label').toBeLessThan(slowLabel);

    release();
    await open;
    expect(await ix.sync()).toMatchObject({ added: 1 });
    expect(ix.search(slow!, 1)[0]?.label).toBe(slowLabel);
    await ix.close({ save: false });
  });
});

import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writePairsFile } from '../../src/finetune/pairs.ts';
import { LocalBlobStore, type BlobStore } from '../../src/storage/blob.ts';

describe('the fine-tuning pairs file', () => {
  let root: string;
  let blobs: LocalBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mira-pairs-'));
    blobs = new LocalBlobStore(join(root, 'blobs'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const lines = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { image: string; caption: string });

  it('links each original into the job folder, so a purge during training leaves the trainer its file; gone originals drop their pairs', async () => {
    const kept = randomBytes(200);
    const { key } = await blobs.put(kept, 'original');
    const purged = 'ab'.repeat(32); // listed, then deleted and purged before the file was written
    const pairs = [
      { imageId: 'i1', sha256: key, caption: 'a red circle' },
      { imageId: 'i1', sha256: key, caption: 'a circle that is red' },
      { imageId: 'i2', sha256: purged, caption: 'a blue square' },
    ];
    const { file, dropped } = await writePairsFile(blobs, pairs, join(root, 'work'));
    expect(dropped).toBe(1);
    const rows = await lines(file);
    expect(rows).toEqual([
      { image: join(root, 'work', 'images', key), caption: 'a red circle' },
      { image: join(root, 'work', 'images', key), caption: 'a circle that is red' },
    ]);
    await blobs.delete(key, 'original');
    expect(Buffer.compare(await readFile(rows[0]!.image), kept)).toBe(0);
  });

  it('copies the bytes from a store without local paths', async () => {
    const bytes = randomBytes(120);
    const { key } = await blobs.put(bytes, 'original');
    const remote: BlobStore = { put: blobs.put.bind(blobs), get: blobs.get.bind(blobs), has: blobs.has.bind(blobs), delete: blobs.delete.bind(blobs), originals: blobs.originals.bind(blobs) };
    const { file, dropped } = await writePairsFile(remote, [{ imageId: 'i1', sha256: key, caption: 'a green star' }], join(root, 'work'));
    expect(dropped).toBe(0);
    const [row] = await lines(file);
    expect(Buffer.compare(await readFile(row!.image), bytes)).toBe(0);
  });
});

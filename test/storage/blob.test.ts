import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore, sha256Hex } from '../../src/storage/blob.ts';

/** Every file under a folder, relative paths. */
async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

describe('local blob store', () => {
  let root: string;
  let store: LocalBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mira-blobs-'));
    store = new LocalBlobStore(root);
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('an original is written under originals/ab/cd/<sha256> with its bytes, and read back', async () => {
    const bytes = randomBytes(5000);
    const key = sha256Hex(bytes);
    const put = await store.put(bytes, 'original');
    expect(put).toEqual({ key, size: 5000 });
    expect(await files(root)).toEqual([join('originals', key.slice(0, 2), key.slice(2, 4), key)]);
    expect(Buffer.compare(await readFile(store.path(key, 'original')), bytes)).toBe(0);
    expect(Buffer.compare((await store.get(key, 'original'))!, bytes)).toBe(0);
    expect(await store.has(key, 'original')).toBe(true);
    expect(await store.has(key, 'thumbnail')).toBe(false);
  });

  it('the same bytes twice make one file and leave no temp files', async () => {
    const bytes = randomBytes(100);
    const results = await Promise.all([store.put(bytes, 'original'), store.put(bytes, 'original'), store.put(bytes, 'original')]);
    expect(new Set(results.map((r) => r.key)).size).toBe(1);
    await store.put(bytes, 'original');
    expect((await files(root)).length).toBe(1);
  });

  it('a thumbnail is stored under its original key as .webp, and replaced when its bytes change', async () => {
    const key = sha256Hex(randomBytes(10));
    await expect(store.put(randomBytes(10), 'thumbnail')).rejects.toThrow(/original key/);
    await store.put(Buffer.from('thumb one'), 'thumbnail', key);
    await store.put(Buffer.from('thumb one'), 'thumbnail', key);
    await store.put(Buffer.from('thumb two'), 'thumbnail', key);
    expect(await files(root)).toEqual([join('thumbnails', key.slice(0, 2), key.slice(2, 4), `${key}.webp`)]);
    expect((await store.get(key, 'thumbnail'))?.toString()).toBe('thumb two');
  });

  it('refuses an original whose bytes do not hash to the given key, and keys that are not sha256 hex', async () => {
    await expect(store.put(randomBytes(10), 'original', 'a'.repeat(64))).rejects.toThrow(/hash to/);
    await expect(store.get('../../etc/passwd', 'original')).rejects.toThrow(RangeError);
    await expect(store.has('A'.repeat(64), 'original')).rejects.toThrow(RangeError);
    expect(await files(root)).toEqual([]);
  });

  it('a missing blob reads as undefined, and delete says whether there was one', async () => {
    const bytes = randomBytes(64);
    const { key } = await store.put(bytes, 'original');
    expect(await store.delete(key, 'original')).toBe(true);
    expect(await store.delete(key, 'original')).toBe(false);
    expect(await store.get(key, 'original')).toBeUndefined();
    expect(await store.has(key, 'original')).toBe(false);
  });

  it('survives a new store on the same folder (what a restart sees)', async () => {
    const bytes = randomBytes(3000);
    const { key } = await store.put(bytes, 'original');
    const reopened = new LocalBlobStore(root);
    expect(Buffer.compare((await reopened.get(key, 'original'))!, bytes)).toBe(0);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export type BlobKind = 'original' | 'thumbnail';

/**
 * Where originals and thumbnails live, content-addressed by the original's sha256. Small on
 * purpose, so that an S3-compatible store can stand behind it.
 */
export interface BlobStore {
  /**
   * Stores the bytes durably before resolving; the same bytes again are a no-op. An original's key
   * is the sha256 of its bytes (a given key must match it); a thumbnail is stored under its
   * original's key, given as `key`.
   */
  put(bytes: Uint8Array, kind: BlobKind, key?: string): Promise<{ key: string; size: number }>;
  get(key: string, kind: BlobKind): Promise<Buffer | undefined>;
  has(key: string, kind: BlobKind): Promise<boolean>;
  /** Returns whether there was something to delete. */
  delete(key: string, kind: BlobKind): Promise<boolean>;
  /** Every original's key, in no particular order (the purge sweep reads it). */
  originals(): AsyncIterable<string>;
  /** A local file path, for stores that have one (streaming a file to a response). */
  path?(key: string, kind: BlobKind): string;
}

const KEY = /^[0-9a-f]{64}$/;

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The blob store of a data folder (MIRA_DATA_DIR): its `blobs/` folder. */
export const blobStoreIn = (dataDir: string): LocalBlobStore => new LocalBlobStore(resolve(dataDir, 'blobs'));

/** `originals/ab/cd/<sha256>` and `thumbnails/ab/cd/<sha256>.webp` under a root folder. */
export class LocalBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  path(key: string, kind: BlobKind): string {
    if (!KEY.test(key)) throw new RangeError(`not a blob key (64 lowercase hex digits): ${JSON.stringify(key.slice(0, 80))}`);
    const shard = join(key.slice(0, 2), key.slice(2, 4));
    return kind === 'original' ? join(this.root, 'originals', shard, key) : join(this.root, 'thumbnails', shard, `${key}.webp`);
  }

  async put(bytes: Uint8Array, kind: BlobKind, key?: string): Promise<{ key: string; size: number }> {
    const digest = sha256Hex(bytes);
    if (kind === 'original' && key !== undefined && key !== digest) throw new RangeError(`original ${key}: the bytes hash to ${digest}`);
    if (kind === 'thumbnail' && key === undefined) throw new RangeError('a thumbnail is stored under its original key: pass it');
    const k = key ?? digest;
    const file = this.path(k, kind);
    if (await this.holds(file, bytes, kind)) return { key: k, size: bytes.byteLength };
    await this.ensureDir(dirname(file));
    await writeDurably(file, bytes);
    return { key: k, size: bytes.byteLength };
  }

  async get(key: string, kind: BlobKind): Promise<Buffer | undefined> {
    return readFile(this.path(key, kind)).catch(ifMissing(undefined));
  }

  async has(key: string, kind: BlobKind): Promise<boolean> {
    return stat(this.path(key, kind)).then(() => true, ifMissing(false));
  }

  async delete(key: string, kind: BlobKind): Promise<boolean> {
    const file = this.path(key, kind);
    const removed = await unlink(file).then(() => true, ifMissing(false));
    if (removed) await fsyncDir(dirname(file));
    return removed;
  }

  async *originals(): AsyncIterable<string> {
    const dirs = async (dir: string) => (await readdir(dir, { withFileTypes: true }).catch(ifMissing([]))).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
    for (const shard of await dirs(join(this.root, 'originals'))) {
      for (const leaf of await dirs(shard)) {
        // Temp files of unfinished writes end in .tmp and are not keys.
        for (const name of await readdir(leaf).catch(ifMissing([] as string[]))) if (KEY.test(name)) yield name;
      }
    }
  }

  /** Whether the file already has these bytes: by name for originals, by content for thumbnails. */
  private async holds(file: string, bytes: Uint8Array, kind: BlobKind): Promise<boolean> {
    const size = await stat(file).then((s) => s.size, ifMissing(-1));
    if (size !== bytes.byteLength) return false;
    if (kind === 'original') return true;
    const current = await readFile(file).catch(ifMissing(undefined));
    return current !== undefined && Buffer.compare(current, bytes) === 0;
  }

  /** mkdir -p, then fsync the parent of every folder it made, so the new entries survive a crash. */
  private async ensureDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    if (!first) return;
    for (let d = dir; ; d = dirname(d)) {
      await fsyncDir(dirname(d));
      if (d === first || d === dirname(d)) break;
    }
  }
}

/** Temp file in the same folder, fsync, rename over, fsync the folder: whole or absent after a crash. */
export async function writeDurably(file: string, bytes: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (bytes instanceof Uint8Array) await fh.writeFile(bytes);
      else for await (const part of bytes) await fh.write(part);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(file));
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ifMissing<T>(value: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT') return value;
    throw err;
  };
}

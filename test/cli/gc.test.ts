import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBlobStore, sha256Hex } from '../../src/storage/blob.ts';
import { runMira } from '../support/mira-process.ts';

/** `mira gc` in embedded mode on a fresh data folder: what an ingest recorded stays, an orphan goes. */
describe('mira gc', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('refuses a database without images, then removes only the originals no image holds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mira-gc-'));
    dirs.push(dir);
    const env = { MIRA_DATA_DIR: dir };
    const blobs = new LocalBlobStore(join(dir, 'blobs'));
    const { key: orphan } = await blobs.put(randomBytes(500), 'original'); // an ingest that died before recording it

    const refused = await runMira(['gc'], env);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([expect.stringContaining('holds no images')]);
    expect(await blobs.has(orphan, 'original')).toBe(true);

    const photo = join(dir, 'photo.png');
    const bytes = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#3366cc' } }).png().toBuffer();
    await writeFile(photo, bytes);
    const ingest = await runMira(['ingest', photo, '--collection', 'gc-test'], env);
    expect(ingest.code, ingest.stderr).toBe(0);

    const dry = await runMira(['gc', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.trim()).toBe('mira gc: 2 originals checked, 1 would be removed (dry run)');
    expect(await blobs.has(orphan, 'original')).toBe(true);

    const swept = await runMira(['gc', '--json'], env);
    expect(swept.code, swept.stderr).toBe(0);
    expect(JSON.parse(swept.stdout)).toEqual({ checked: 2, removed: 1, dryRun: false });
    expect(await blobs.has(orphan, 'original')).toBe(false);
    expect(await blobs.has(sha256Hex(bytes), 'original')).toBe(true);
    expect(await blobs.has(sha256Hex(bytes), 'thumbnail')).toBe(true);
  }, 120_000);
});

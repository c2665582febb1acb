import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TINY_BLIP = fileURLToPath(new URL('../fixtures/tiny-blip', import.meta.url));

/** A private copy of a bundle (the tiny one unless `from` names another) whose manifest a test may change. */
export async function bundleCopy(edit?: (m: Record<string, any>) => void, from = TINY_BLIP): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mira-bundle-'));
  await cp(from, dir, { recursive: true });
  if (edit) {
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    edit(m);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(m));
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Deterministic pseudo-random pixels [3, s, s]. */
export function fakePixels(seed: number, s: number): Float32Array {
  return new Float32Array(3 * s * s).map((_, i) => Math.sin(i * 0.37 + seed * 1.7) * 1.5);
}

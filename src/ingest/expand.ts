/**
 * A server-side path -> the sources to ingest: a file is itself, a `.jsonl` file is a manifest, and a
 * directory is its image files, recursively, in sorted order. Directory walks skip dot-files, do not
 * follow symlinked directories (no loops, no escapes), and take a symlinked file only when its real
 * path is inside the root.
 */
import { type Dirent, promises as fs } from 'node:fs';
import { extname, join } from 'node:path';
import { IngestError } from './errors.ts';
import type { IngestLimits } from './limits.ts';
import { readManifest } from './manifest.ts';
import { isInside, realRoot, resolveUnderRoot } from './paths.ts';
import type { IngestSource } from './sources.ts';

export interface ExpandedSource {
  source: Extract<IngestSource, { kind: 'path' | 'url' }>;
  /** The manifest line, for entries from a manifest. */
  line?: number;
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.jpe', '.png', '.webp', '.gif', '.avif', '.heic', '.heif', '.tif', '.tiff']);
const MAX_DEPTH = 64;

/** Magic numbers of the accepted formats, for files without a known extension. */
export function looksLikeImage(head: Uint8Array): boolean {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < 12) return false;
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return true; // JPEG
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return true; // PNG
  const ascii = (from: number, to: number) => b.subarray(from, to).toString('latin1');
  if (ascii(0, 4) === 'GIF8') return true;
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return true;
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return true; // TIFF
  return ascii(4, 8) === 'ftyp' && ['avif', 'avis', 'heic', 'heix', 'mif1', 'msf1'].includes(ascii(8, 12)); // ISO-BMFF
}

async function sniff(path: string): Promise<boolean> {
  const fh = await fs.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK).catch(() => null);
  if (!fh) return false;
  try {
    const head = Buffer.alloc(12);
    const { bytesRead } = await fh.read(head, 0, 12, 0);
    return looksLikeImage(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

async function isImageFile(path: string): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  if (IMAGE_EXTENSIONS.has(ext)) return true;
  return ext === '' ? sniff(path) : false;
}

async function walk(dir: string, rootReal: string, depth: number, out: Set<string>, max: number): Promise<void> {
  if (depth > MAX_DEPTH) return;
  const entries: Dirent[] = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      await walk(full, rootReal, depth + 1, out, max);
      continue;
    }
    let file = full;
    if (e.isSymbolicLink()) {
      const real = await fs.realpath(full).catch(() => null);
      if (real === null || !isInside(real, rootReal)) continue;
      if (!(await fs.stat(real)).isFile()) continue;
      file = real;
    } else if (!e.isFile()) continue;
    if (out.has(file) || !(await isImageFile(file))) continue;
    if (out.size >= max) {
      throw new IngestError('directory_too_large', `The directory holds more than ${max} image files (MIRA_MAX_MANIFEST_LINES).`);
    }
    out.add(file);
  }
}

/** Expands a user path under the ingest root into sources. */
export async function expandPath(userPath: string, limits: Pick<IngestLimits, 'root' | 'maxManifestLines'>): Promise<ExpandedSource[]> {
  const real = await resolveUnderRoot(limits.root, userPath);
  const st = await fs.stat(real);
  if (st.isDirectory()) {
    // A Set keeps the walk order and lists a file reached through a symlink once.
    const files = new Set<string>();
    await walk(real, await realRoot(limits.root), 0, files, limits.maxManifestLines);
    return [...files].map((path) => ({ source: { kind: 'path', path } }));
  }
  if (extname(real).toLowerCase() === '.jsonl') {
    const entries = await readManifest(limits.root, userPath, limits.maxManifestLines);
    return entries.map(({ line, source }) => ({ source, line }));
  }
  if (!st.isFile()) throw new IngestError('path_not_file', `${JSON.stringify(userPath.slice(0, 300))} is not a regular file.`);
  return [{ source: { kind: 'path', path: real } }];
}

/**
 * Server-side paths, confined to the ingest root. A path is checked three times: as written (no `..`
 * segment, lexically under the root), as a real path (fs.realpath, symlinks resolved, compared with a
 * trailing separator so `/data/root-evil` is not inside `/data/root`), and as the file actually
 * opened (O_NOFOLLOW, then /proc/self/fd on Linux), so a symlink swapped in after the check is caught.
 */
import { constants, promises as fs } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { IngestError } from './errors.ts';

export function isInside(child: string, root: string): boolean {
  if (child === root) return true;
  return child.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The real path of the root; path_ingest_disabled when none is configured. */
export async function realRoot(root: string | undefined): Promise<string> {
  if (root === undefined || root === '') {
    throw new IngestError('path_ingest_disabled', 'Server-side paths are not accepted: MIRA_INGEST_ROOT is not set.');
  }
  const real = await fs.realpath(root);
  if (!(await fs.stat(real)).isDirectory()) throw new Error(`MIRA_INGEST_ROOT ${root} is not a directory`);
  return real;
}

/**
 * The real path of `userPath` (relative to the root, or absolute), refused unless it exists inside
 * the root. Checks the written form first, so paths outside the root are refused without a probe.
 */
export async function resolveUnderRoot(root: string | undefined, userPath: string): Promise<string> {
  const rootReal = await realRoot(root);
  const shown = JSON.stringify(userPath.slice(0, 300));
  if (userPath === '' || userPath.includes('\0')) throw new IngestError('path_invalid', `Not a usable path: ${shown}.`);
  if (userPath.split(/[\\/]/).includes('..')) {
    throw new IngestError('path_outside_root', `Paths with ".." are not accepted: ${shown}.`);
  }
  const written = resolve(rootReal, userPath);
  const configured = resolve(root!);
  if (!isInside(written, rootReal) && !(isAbsolute(userPath) && isInside(written, configured))) {
    throw new IngestError('path_outside_root', `${shown} is outside the ingest root.`);
  }
  let real: string;
  try {
    real = await fs.realpath(written);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new IngestError('path_not_found', `${shown} does not exist.`, { cause: e });
    throw new IngestError('path_not_found', `${shown} cannot be read (${code ?? 'error'}).`, { cause: e });
  }
  if (!isInside(real, rootReal)) throw new IngestError('path_outside_root', `${shown} leads outside the ingest root.`);
  return real;
}

export interface OpenedFile {
  fh: fs.FileHandle;
  realPath: string;
  size: number;
}

/**
 * Opens a regular file under the root (the caller closes it). path_not_file for directories, FIFOs,
 * devices and sockets: opened non-blocking and never read.
 */
export async function openUnderRoot(root: string | undefined, userPath: string): Promise<OpenedFile> {
  const realPath = await resolveUnderRoot(root, userPath);
  const rootReal = await realRoot(root);
  const shown = JSON.stringify(userPath.slice(0, 300));
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(realPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new IngestError('path_outside_root', `${shown} became a symlink while it was being opened.`, { cause: e });
    throw new IngestError('path_not_found', `${shown} cannot be opened (${code ?? 'error'}).`, { cause: e });
  }
  try {
    const opened = await fs.readlink(`/proc/self/fd/${fh.fd}`).catch(() => realPath);
    if (!isInside(opened, rootReal)) throw new IngestError('path_outside_root', `${shown} leads outside the ingest root.`);
    const st = await fh.stat();
    if (!st.isFile()) throw new IngestError('path_not_file', `${shown} is not a regular file.`);
    return { fh, realPath, size: st.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Reads a regular file under the root, refused (too_many_bytes) past maxBytes. */
export async function readFileUnderRoot(root: string | undefined, userPath: string, maxBytes: number): Promise<{ bytes: Buffer; realPath: string }> {
  const { fh, realPath, size } = await openUnderRoot(root, userPath);
  const shown = JSON.stringify(userPath.slice(0, 300));
  try {
    if (size > maxBytes) throw new IngestError('too_many_bytes', `${shown} is ${size} bytes; the limit is ${maxBytes} bytes.`);
    // Read one byte past the size: a file that grew since stat is noticed, and refused past the cap.
    const buf = Buffer.alloc(Math.min(maxBytes, size) + 1);
    let n = 0;
    for (let bytesRead = -1; bytesRead !== 0 && n < buf.length; n += bytesRead) {
      ({ bytesRead } = await fh.read(buf, n, buf.length - n, n));
    }
    if (n > maxBytes) throw new IngestError('too_many_bytes', `${shown} is larger than the limit of ${maxBytes} bytes.`);
    return { bytes: buf.subarray(0, n), realPath };
  } finally {
    await fh.close();
  }
}
